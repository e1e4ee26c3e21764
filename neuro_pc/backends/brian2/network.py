"""Build Brian2 objects from a :class:`~.codegen.Brian2Model`, stream data
through them in ONE ``run()``, read the results back.

Brian2's device and preferences are process-global; :func:`brian2_target`
sets them for one run and restores them afterwards (``device.reinit()`` and
``set_device('runtime')`` after a ``cpp_standalone`` build), so several
simulators can live in one process. Objects get fixed names (``npc_...``), so
the Cython cache is hit again by the next run of the same circuit, and
TimedArrays are padded to a power of two rows, so a run with a different
number of samples reuses the compiled code (a TimedArray's size is part of its
Cython/C++ code).

Time: one Brian2 step is :data:`STEP` (1 ms, arbitrary; the IR's ``dt`` is
only a number in the equations). The network starts at step 1 (step 0 is
skipped), so window ``k`` is steps ``kT+1 .. (k+1)T`` and the window-end clock
(``dt = T*STEP``) fires at the end of its last step.
"""
from __future__ import annotations

import atexit
import contextlib
import gc
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from neuro_pc.backends.brian2.codegen import Brian2BackendError, Brian2Model
from neuro_pc.backends.brian2.functions import brian2_functions
from neuro_pc.ir.functions import NUMPY_FUNCTIONS

TARGETS = ("numpy", "cython", "cpp_standalone")


def _step():
    from brian2 import ms

    return 1 * ms


@contextlib.contextmanager
def brian2_target(target: str, build_dir: str | None = None):
    """Use ``target`` for the Brian2 objects created and run inside the block.

    Yields the build directory (``cpp_standalone``) or None. Restores the
    previous code-generation target, and the runtime device after a standalone
    build; a temporary build directory is removed afterwards.
    """
    import brian2 as b2

    if target not in TARGETS:
        raise ValueError(f"unknown Brian2 target {target!r}; choose one of {TARGETS}")
    if target == "cpp_standalone":
        b2.set_device("cpp_standalone", directory=build_dir, build_on_run=False)
        try:
            yield build_dir
        finally:
            b2.device.reinit()
            b2.set_device("runtime")
    else:
        old = b2.prefs.codegen.target
        b2.prefs.codegen.target = target
        try:
            yield None
        finally:
            b2.prefs.codegen.target = old


_BUILD_ROOT: str | None = None


def default_build_dir(key: str) -> str:
    """A ``cpp_standalone`` build directory for ``key`` (a circuit's hash), private
    to this process and removed at exit. Brian2 rewrites only the sources that
    changed, so the next build of the same circuit recompiles only those."""
    global _BUILD_ROOT
    if _BUILD_ROOT is None:
        _BUILD_ROOT = tempfile.mkdtemp(prefix="neuro_pc_brian2_")
        atexit.register(shutil.rmtree, _BUILD_ROOT, True)
    return os.path.join(_BUILD_ROOT, key)


def _bucket(n: int) -> int:
    """Rows of a streamed TimedArray: the next power of two >= n (>= 16)."""
    return max(16, 1 << max(0, int(n - 1).bit_length()))


@dataclass
class RunResult:
    state: dict[str, np.ndarray]              # "pop.var" -> (n,)
    weights: dict[str, np.ndarray]            # projection -> (n_target, n_source)
    readout: np.ndarray | None                # (n_windows, n_readout)
    monitor: dict[str, np.ndarray] = field(default_factory=dict)   # "pop.var" -> (steps, n)


def connectivity(w: np.ndarray, mask: np.ndarray | None, dense: bool):
    """Synapse list ``(i_pre, j_post, needs_mask)`` of a projection: all pairs,
    or the mask's pairs plus any pair that holds a non-zero weight."""
    n_post, n_pre = w.shape
    if mask is None or dense:
        keep = np.ones((n_post, n_pre), dtype=bool)
    else:
        keep = (mask != 0) | (w != 0)
    jj, ii = np.nonzero(keep)                 # row-major over (post, pre)
    needs_mask = mask is not None and bool(np.any(mask[jj, ii] == 0))
    return ii.astype(np.int32), jj.astype(np.int32), needs_mask


def run_stream(model: Brian2Model, weights: dict[str, np.ndarray], masks: dict[str, np.ndarray],
               state: dict[str, np.ndarray], data: dict[str, np.ndarray], *, train: bool,
               learn: bool, target: str = "numpy", transforms: dict | None = None,
               record: tuple[tuple[str, str], ...] = (), readout: tuple[str, str] | None = None,
               report: Callable | str | None = None, build_dir: str | None = None) -> RunResult:
    """Stream ``data`` (``{stream: (n_windows, width)}``), one window per row,
    through the circuit in one Brian2 ``run()``.

    weights/state: the starting point (``state`` ``{"pop.var": (n,)}``);
    train: the ``train`` scalar; learn: whether the rules run; transforms:
    ``{(kind, projection): callable}`` for ``muon`` (runtime targets only).
    Returns the state and weights at the end and the readout at the end of
    every window.
    """
    import brian2 as b2

    circuit = model.circuit
    T = circuit.schedule.window
    n_windows = next(iter(data.values())).shape[0] if data else 0
    transforms = transforms or {}
    runtime = target != "cpp_standalone"
    if not runtime:
        _check_standalone(model, learn)
    step = _step()
    if not runtime and build_dir is None:
        import hashlib

        key = hashlib.sha1(circuit.to_json().encode()).hexdigest()[:16]
        build_dir = default_build_dir(f"{circuit.name}_{key}_{'train' if learn else 'infer'}")
    if not runtime:
        # code objects of the last build still alive would make Brian2 rename this
        # build's ones (..._codeobject_1), changing every source file
        gc.collect()
    with brian2_target(target, build_dir) as directory:
        # explicit, named clocks: generated sources stay identical between builds
        clock = b2.Clock(dt=step, name="npc_clock")
        window_clock = b2.Clock(dt=T * step, name="npc_window_clock")
        ns = dict(brian2_functions())
        ns["npc_tstep"] = step
        for stream, name in model.streams.items():
            values = np.zeros((_bucket(n_windows), circuit.streams[stream]))
            values[:n_windows] = data[stream]
            ns[name] = b2.TimedArray(values, dt=T * step, name=name)
        objects = []
        groups = {}
        for pop, spec in model.groups.items():
            g = b2.NeuronGroup(spec.size, "\n".join(spec.equations), clock=clock,
                               name=spec.name)
            for var, bname in spec.variables.items():
                key = f"{pop}.{var}"
                if key in state:
                    setattr(g, bname, np.asarray(state[key], dtype=np.float64).reshape(-1))
            if spec.uses_train:
                g.npc_train = 1.0 if train else 0.0
            if spec.code:
                g.run_regularly(spec.code, when="groups", order=0, name=spec.name + "_update")
            if spec.numpy_update:
                if not runtime:
                    raise AssertionError("checked above")
                objects.append(_numpy_population_op(spec, g, T, train, step, clock))
            groups[pop] = g
            objects.append(g)
        synapses = {}
        for proj, spec in model.synapses.items():
            w = np.asarray(weights[proj], dtype=np.float64)
            mask = masks.get(proj)
            if spec.conv is not None:   # a fixed convolution: the synapses of its expansion
                from neuro_pc.ir.conv import synapse_list

                jj, ii, kidx = synapse_list(spec.conv)
                ii, jj, needs_mask = ii.astype(np.int32), jj.astype(np.int32), False
            else:
                ii, jj, needs_mask = connectivity(w, mask, dense="muon" in spec.transforms)
            eqs = list(spec.model)
            if needs_mask and spec.rule_code and not spec.transforms:
                eqs.append("npc_m : 1 (constant)")
            s = b2.Synapses(groups[spec.source], groups[spec.target], "\n".join(eqs), clock=clock,
                            name=spec.name)
            s.connect(i=ii, j=jj)
            s.w = w.reshape(-1)[kidx] if spec.conv is not None else w[jj, ii]
            if needs_mask and spec.rule_code and not spec.transforms:
                s.npc_m = mask[jj, ii]
            if learn and spec.rule_code:
                code = spec.rule_code
                if needs_mask and not spec.transforms:
                    code = "w += npc_m * (" + code[len("w += "):] + ")"
                every = clock if spec.every_step else window_clock
                s.run_regularly(code, clock=every, when="end", order=0, name=spec.name + "_rule")
                if spec.transforms:
                    objects.append(_transform_op(spec, s, w.shape, mask, transforms, every))
            synapses[proj] = (s, ii, jj)
            objects.append(s)
        ro = None
        if readout is not None:
            ro = b2.StateMonitor(groups[readout[0]], model.groups[readout[0]].names[readout[1]],
                                 record=True, clock=window_clock, when="end", order=10,
                                 name="npc_readout")
            objects.append(ro)
        mons = {}
        for k, (pop, var) in enumerate(record):
            m = b2.StateMonitor(groups[pop], model.groups[pop].names[var], record=True, clock=clock,
                                when="end", order=10, name=f"npc_record_{k}")
            mons[f"{pop}.{var}"] = (m, model.groups[pop].names[var])
            objects.append(m)
        net = b2.Network(*objects)
        kw = {}
        if report is not None:
            kw = dict(report=report, report_period=1 * b2.second)
        if runtime:
            net.t_ = float(step)       # start at step 1 (see the module docstring)
        else:                          # standalone: advance its clock by one idle step
            everything = list(net.objects) + [c for o in net.objects for c in o.contained_objects]
            for o in everything:
                o.active = False
            net.run(step, namespace=ns)
            for o in everything:
                o.active = True
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            net.run(n_windows * T * step, namespace=ns, **kw)
            if not runtime:
                b2.device.build(directory=directory, compile=True, run=True, debug=False)
            out_state = {}
            for pop, spec in model.groups.items():
                g = groups[pop]
                for var in circuit.population(pop).variables:
                    out_state[f"{pop}.{var}"] = np.array(g.variables[spec.names[var]].get_value(),
                                                         dtype=np.float64)
            out_w = {}
            for proj, (s, ii, jj) in synapses.items():
                w = np.array(weights[proj], dtype=np.float64, copy=True)
                if model.synapses[proj].conv is not None:   # fixed: its kernel as given
                    out_w[proj] = w
                    continue
                pre = np.asarray(s.variables["_synaptic_pre"].get_value())
                post = np.asarray(s.variables["_synaptic_post"].get_value())
                w[post, pre] = s.variables["w"].get_value()
                out_w[proj] = w
            readouts = None
            if ro is not None:
                readouts = np.array(getattr(ro, ro.record_variables[0] + "_")).T[:n_windows]
            monitor = {k: np.array(getattr(m, name + "_")).T for k, (m, name) in mons.items()}
        finally:
            if was_enabled:
                gc.enable()
        del net, objects, groups, synapses
    return RunResult(state=out_state, weights=out_w, readout=readouts, monitor=monitor)


def _check_standalone(model: Brian2Model, learn: bool) -> None:
    for g in model.groups.values():
        if g.numpy_update:
            raise Brian2BackendError(
                f"population {g.pop!r} uses a population-level function (kwta, layernorm, "
                "softmax, batchnorm, batchmean, popsum, popmean); the Brian2 backend computes those in a "
                "NumPy network_operation, which the cpp_standalone target cannot run. Use "
                "target='numpy' or 'cython', or the reference backend.")
    for s in model.synapses.values():
        if learn and s.transforms:
            raise Brian2BackendError(
                f"the rule of projection {s.proj!r} uses the transform(s) {list(s.transforms)} "
                "(population-level operations on the whole weight matrix); the Brian2 backend "
                "applies them in a NumPy network_operation, which the cpp_standalone target "
                "cannot run. Use target='numpy' or 'cython', or the reference backend.")


def _numpy_population_op(spec, group, T: int, train: bool, step, clock):
    """A network_operation running a population's update in NumPy (population
    functions), after its ports/streams code (order 1 in the 'groups' slot)."""
    import brian2 as b2

    namespace = {f"F_{k}": v for k, v in NUMPY_FUNCTIONS.items()}
    namespace["F_asrow"] = lambda a: np.broadcast_to(np.atleast_2d(a), (1, spec.size))
    exec(compile(spec.numpy_update, f"<neuro_pc brian2 {spec.pop}>", "exec"), namespace)
    update = namespace["update"]
    names = list(spec.variables.values()) + [v for k, v in spec.names.items()
                                             if k.startswith("in:")]
    flag = 1.0 if train else 0.0

    def op():
        arrays = {n: group.variables[n].get_value() for n in names}
        tw = (int(np.asarray(clock.timestep[:]).reshape(-1)[0]) - 1) % T
        update(arrays, tw, flag)

    return b2.NetworkOperation(op, clock=clock, when="groups", order=1,
                               name=spec.name + "_numpy_update")


def _transform_op(spec, syn, shape, mask, transforms, every):
    """A network_operation applying ``dW`` with the rule's transforms, exactly as
    the reference does: muon(dW), mask, ``W += dW``, unit columns / rows."""
    import brian2 as b2

    def op():
        pre = syn.variables["_synaptic_pre"].get_value()
        post = syn.variables["_synaptic_post"].get_value()
        wv = syn.variables["w"].get_value()
        dW = np.zeros(shape)
        dW[post, pre] = syn.variables["dw"].get_value()
        W = np.zeros(shape)
        W[post, pre] = wv
        for t in spec.transforms:
            if t == "muon":
                dW = transforms[("muon", spec.proj)](dW)
        if mask is not None:
            dW = dW * mask
        W += dW
        for t in spec.transforms:
            if t == "unit_columns":
                norms = np.linalg.norm(W, axis=0, keepdims=True)
                W /= np.where(norms > 0, norms, 1.0)
            elif t == "unit_rows":
                norms = np.linalg.norm(W, axis=1, keepdims=True)
                W /= np.where(norms > 0, norms, 1.0)
        wv[:] = W[post, pre]

    return b2.NetworkOperation(op, clock=every, when="end", order=1,
                               name=spec.name + "_transforms")
