"""The Lava backend: a circuit compiled to Lava processes on ``Loihi2SimCfg``.

Mapping (docs/backends/lava.md):

* population → one generated process (:mod:`neuro_pc.backends.lava.processes`)
  executing its streamed variables and update statements every step; a
  population that is Lava's LIF (:func:`hardware_targets.neurons.lava_lif`) →
  Lava's own ``LIF`` / ``LIFReset`` process and model (bit-accurate in
  ``fixed_pt``), subclassed only to record its spikes;
* fixed projection (no rule, not read by a tied projection) → Lava ``Dense``
  with graded spikes (``num_message_bits=24``); its ``a_buff`` starts at
  ``W @ s0`` so the first step sees the initial state, as in the reference;
* convolution (its own kernel, or tied to one) → Lava's own ``Conv`` process
  with a fixed kernel, in both tags (:mod:`neuro_pc.backends.lava.conv`; a
  transposed one with stride > 1 → a ``Dense`` of its expansion). A plastic
  kernel runs fixed, and learning with it is an error: nothing in Lava learns
  a shared kernel (its update sums over positions);
* plastic projection, and every projection tied to it → one ``PlasticDense``
  process applying the IR rule (``floating_pt`` only);
* ``fixed_pt``: every projection → Lava's bit-accurate ``Dense`` with weights
  quantised through ``hardware_targets`` (inference only; see
  :mod:`neuro_pc.backends.lava.fixed`);
* streams → held by the population process that reads them (one row per
  window of the run; no source process or channel, which Lava charges per step).

One call of :meth:`LavaSimulator.run_windows` (and so of ``train``,
``predict``, ``present``) is one Lava ``run()`` over all its windows, with
``stop()`` in ``finally``. State and weights are read back after the run, so
consecutive calls continue where the previous one ended, as in the reference.

Monitors (``record=[(pop, var), ...]``, as the reference): every population
process records its monitored variables after every step into a Var that
holds the run's last ``mon_steps`` steps; they are read back with the state.
"""
from __future__ import annotations

import sys
import time
import warnings
from typing import NamedTuple

import numpy as np

from neuro_pc.backends.base import (Simulator, check_readout, check_weights, inference_array,
                                    sample_order, streams_for, training_arrays)
from neuro_pc.backends.lava import codegen
from neuro_pc.backends.lava.fixed import (FixedPointError, FixedPointWarning,
                                          IntegerFunctions, dense_params,
                                          effective_matrix, population_fixed_step_source,
                                          precision, quantize_input, synapse)
from neuro_pc.ir import Circuit, CircuitError

TAGS = ("floating_pt", "fixed_pt")
#: how plastic projections learn: the project's PlasticDense (floating_pt, the IR
#: rule exactly) or Lava's learning engine (LearningDense; both tags)
LEARNING_MODES = ("plastic_dense", "engine")
FRAC_BITS_DEFAULT = 12


class LavaRunError(RuntimeError):
    """A process model failed during a Lava run (the message holds its traceback).

    Raised after the run has finished and every process has been stopped."""


class LavaSimulator(Simulator):
    """A circuit on Lava's CPU simulator.

    tag: ``"floating_pt"`` (float64; equals the reference to rounding) or
    ``"fixed_pt"`` (Loihi 2 integer arithmetic, inference only; equals
    :class:`~neuro_pc.backends.reference.quantized.QuantizedReferenceSimulator`
    bit for bit). frac_bits, target: the fixed-point format (fixed_pt only).

    record: ``(population, variable)`` pairs monitored at every step, as in
    :class:`~neuro_pc.backends.reference.ReferenceSimulator`. After
    :meth:`present` (``B`` rows of ``x``: ``B`` windows one after the other),
    :attr:`monitor` is ``{"pop.var": (T, B, n)}``: column ``b`` is the window of
    row ``b`` (for ``B = 1`` exactly the reference's last-window monitor). After
    :meth:`run_windows` / :meth:`train` / :meth:`predict` / :meth:`readouts`
    it is the run's last window, ``(T, 1, n)``, or with ``record_all=True``
    every step of the run, ``(n_windows * T, 1, n)`` (memory: ``n_windows * T
    * n`` floats per monitored variable, which is why it is opt-in).
    Values are floats (``fixed_pt``: the integer state over ``2**frac_bits``).

    After a run, :attr:`last_run` holds ``{"steps", "build_s", "run_s",
    "read_s"}`` (seconds: process construction, ``run()`` including Lava's
    compile and start-up, reading results back).
    """

    backend = "lava"
    default_tag = "floating_pt"

    def __init__(self, circuit: Circuit, weights=None, *, seed: int = 0, masks=None,
                 tag: str = "floating_pt", frac_bits: int | None = None,
                 target: str = "loihi2", record: tuple[tuple[str, str], ...] | list = (),
                 record_all: bool = False, learning: str = "plastic_dense", plan=None,
                 activity: dict | None = None, plan_options: dict | None = None,
                 lava_lif: bool = True):
        super().__init__(circuit, weights, seed=seed, masks=masks)
        if tag not in TAGS:
            raise ValueError(f"unknown Lava tag {tag!r}; choose one of {TAGS}")
        if learning not in LEARNING_MODES:
            raise ValueError(f"unknown learning mode {learning!r}; choose one of "
                             f"{LEARNING_MODES}")
        self.learning = learning
        self.plan = None
        if learning == "engine":
            self._plan_engine(plan, tag, activity, plan_options,
                              FRAC_BITS_DEFAULT if frac_bits is None else frac_bits)
        self.record = tuple(tuple(r) for r in record)
        for pop, var in self.record:
            if var not in circuit.population(pop).variables:
                raise ValueError(f"cannot record {pop}.{var}: population {pop!r} has variables "
                                 f"{list(circuit.population(pop).variables)}")
        self.record_all = bool(record_all)
        self.monitor: dict[str, np.ndarray] = {}
        self.tag = tag
        self.fixed = tag == "fixed_pt"
        self.T = circuit.schedule.window
        self.last_run: dict = {}
        if self.fixed:
            from neuro_pc.backends.lava.fixed import FRAC_BITS

            self.precision = precision(target, FRAC_BITS if frac_bits is None else frac_bits)
            self._I = IntegerFunctions(self.precision)
        else:
            self.precision = None
        #: {population: (LavaLif, LavaLifFixed or None)}: the populations that run on
        #: Lava's own LIF models (none with learning="engine": there every population
        #: stays a project process, as in its emulation EngineSimulator)
        self.lif = self._lif_populations(target) if lava_lif and learning != "engine" else {}
        #: fractional bits of each state variable (fixed_pt; a Lava LIF's i, v: F + 6)
        self.var_frac_bits = {}
        if self.fixed:
            F = self.precision.frac_bits
            self.var_frac_bits = {f"{p.name}.{v}": F for p in circuit.populations
                                  for v in p.variables}
            for name, (m, fx) in self.lif.items():
                for v in ("i", "v"):
                    if f"{name}.{v}" in self.var_frac_bits:
                        self.var_frac_bits[f"{name}.{v}"] = fx.state_frac_bits
            self._step_sources = {p.name: population_fixed_step_source(p, self._I)
                                  for p in circuit.populations if p.name not in self.lif}
        else:
            self._step_sources = {p.name: codegen.population_step_source(p)
                                  for p in circuit.populations if p.name not in self.lif}
            self._rule_sources = {p.name: codegen.rule_source(circuit, p)
                                  for p in circuit.plastic if not self._on_engine(p.name)}
            for p in circuit.plastic:   # compile now: errors at compile time, not in a child
                if self._on_engine(p.name):
                    continue
                codegen.compile_function(self._rule_sources[p.name], "rule",
                                         codegen.float_globals(), "<check>")
        for name, src in self._step_sources.items():
            codegen.compile_function(src, "step", self._globals(), "<check>")
        self.reset()
        if self.fixed:
            self._warn_weight_losses()

    # -- on-chip learning ------------------------------------------------------------
    def _plan_engine(self, plan, tag, activity, plan_options, frac_bits) -> None:
        """Compile every plastic projection to a learning block (all of them must)."""
        from hardware_targets.onchip import plan_onchip

        if self.masks:
            raise FixedPointError("learning on the engine does not support sparse projections "
                                  f"yet ({sorted(self.masks)})")
        if plan is None:
            plan = plan_onchip(self.circuit, self.weights, tag, activity=activity,
                               seed=self.seed, frac_bits=frac_bits, **(plan_options or {}))
        if plan.tag != tag or plan.circuit != self.circuit.name:
            raise ValueError(f"the plan is for {plan.circuit!r} on {plan.tag}, not "
                             f"{self.circuit.name!r} on {tag}")
        self.plan = plan.check_complete(self.circuit)
        mode = plan.mode
        #: each block's weights in the engine's units (fixed: register integers)
        self.units = {n: ep.to_units(self.weights[n], mode) for n, ep in plan.projections.items()}
        for n, ep in plan.projections.items():
            self.weights[n] = ep.from_units(self.units[n])

    def _warn_weight_losses(self) -> None:
        """A :class:`FixedPointWarning` for every projection whose 8-bit quantisation
        loses much (its synapses; a learning block's register is in the plan)."""
        from hardware_targets.circuit_quant import quantize_circuit

        cq = quantize_circuit(self.circuit, self.weights, "loihi2")
        for line in cq.losses():
            name = line.split("'")[1]
            if not self._on_engine(name):
                warnings.warn(FixedPointWarning(f"fixed_pt: {line}"), stacklevel=3)

    def _on_engine(self, name: str) -> bool:
        return self.plan is not None and name in self.plan.projections

    def _lif_populations(self, target: str) -> dict:
        from hardware_targets.base import get_target
        from hardware_targets.neurons import lif_populations

        if self.fixed:
            return lif_populations(self.circuit, self.precision.frac_bits, get_target(target))
        return lif_populations(self.circuit)

    # -- state -------------------------------------------------------------------
    def reset(self, batch: int = 1) -> None:
        """Every state variable to its initial value (batch is always 1 on Lava)."""
        self.state = {f"{p.name}.{v}": np.full((1, p.size), float(p.init.get(v, 0.0)))
                      for p in self.circuit.populations for v in p.variables}
        if self.fixed:
            self.qstate = {k: quantize_input(v, self.precision, self.var_frac_bits[k])
                           for k, v in self.state.items()}

    def _globals(self) -> dict:
        g = codegen.float_globals()
        if self.fixed:
            g["I"] = self._I
        return g

    # -- the public interface ------------------------------------------------------
    def present(self, x, y=None, train=True, learn=None):
        """Windows for the rows of ``x`` one after the other (online, batch size 1),
        in one Lava run. Returns the readout at the end of each window ``(B, n_out)``.

        With ``record``, :attr:`monitor` holds every presented window: ``(T, B, n)``."""
        return self._windows(x, y, train=train, learn=learn, monitor="windows")

    def train(self, x, y=None, epochs: int = 1, seed: int = 0, batch_size: int = 1,
              progress: bool = False, callback=None) -> "LavaSimulator":
        """Online training in :func:`~neuro_pc.backends.base.sample_order`: one Lava
        run for all epochs (one per epoch if ``callback`` is given)."""
        if batch_size != 1:
            raise ValueError(f"the Lava backend trains online (batch_size=1); got "
                             f"batch_size={batch_size}. Batched training is the reference's "
                             "fast-sweep regime.")
        self._check_trainable()
        x, y = training_arrays(x, y, self.circuit)
        order = sample_order(len(x), epochs, seed)
        if progress and len(order):   # a Lava run shows nothing until it ends
            print(f"lava: {self.circuit.name}: training on {len(x)} samples x {epochs} "
                  f"epoch(s) in {'one Lava run' if callback is None else 'one run per epoch'} "
                  f"({self.tag}; no progress bar)...", file=sys.stderr, flush=True)
        if callback is None:
            if len(order):
                self.run_windows(x[order], y[order], train=True)
                check_weights(self, epochs - 1, epochs, " (all epochs in one Lava run)")
            return self
        for epoch, idx in enumerate(order.reshape(epochs, len(x))):
            self.run_windows(x[idx], y[idx], train=True)
            check_weights(self, epoch, epochs)
            callback(epoch, self)
        return self

    def predict(self, x, batch_size: int | None = None) -> np.ndarray:
        """Predicted classes, all samples streamed through one Lava run."""
        x = inference_array(x)
        if len(x) == 0:
            return np.zeros(0, dtype=int)
        return check_readout(self, self.run_windows(x, None, train=False)).argmax(axis=1)

    def readouts(self, x, y=None, train=False) -> np.ndarray:
        """The readout at the end of each window (no learning unless ``train``)."""
        return self.run_windows(x, y, train=train)

    def _check_trainable(self):
        convs = [p for p in self.circuit.plastic if p.conv is not None]
        if convs and self.learning != "engine":
            p = convs[0]
            raise CircuitError(
                f"projection {p.name!r} is a convolution with a plastic shared kernel "
                f"({p.conv.describe()}): Lava runs it on its Conv process with the kernel "
                "fixed, and neither the project's PlasticDense (a rule per synapse) nor "
                f"Loihi's learning engine can learn a kernel whose update sums the "
                f"per-position terms of {p.conv.positions} positions. Train it on the "
                "reference backend and deploy the artifact here (inference), or fix the "
                "convolutions (neuro_pc.models.conv.fixed_convs) to learn the rest on Lava")
        if self.fixed and self.circuit.plastic and self.learning != "engine":
            raise FixedPointError(
                "fixed_pt learns only on Lava's learning engine: compile with "
                "learning='engine' (LearningDense), or train on the reference or with "
                "tag='floating_pt' and deploy the weights to fixed_pt")

    # -- one Lava run ----------------------------------------------------------------
    def run_windows(self, x, y=None, *, train=True, learn=None) -> np.ndarray:
        """Run ``len(x)`` windows in ONE Lava run; ``train``/``learn`` a bool or one
        flag per window (``learn`` defaults to ``train``). Returns ``(N, n_readout)``.

        With ``record``, :attr:`monitor` holds the last window ``(T, 1, n)``, or
        every step ``(N * T, 1, n)`` if the simulator was made with ``record_all``."""
        return self._windows(x, y, train=train, learn=learn,
                             monitor="all" if self.record_all else "last")

    def _windows(self, x, y, *, train, learn, monitor: str) -> np.ndarray:
        streams = streams_for(self.circuit, x, y)
        if self.fixed:
            from hardware_targets.circuit_quant import state_losses

            for name, arr in streams.items():
                for line in state_losses(f"stream {name!r}", arr, self.precision.state_bits,
                                         self.precision.frac_bits):
                    warnings.warn(FixedPointWarning(f"fixed_pt: {line}"), stacklevel=4)
        n = len(next(iter(streams.values()))) if streams else len(np.atleast_2d(x))
        train_flags = np.broadcast_to(np.asarray(train, dtype=bool), (n,)).copy()
        learn_flags = train_flags.copy() if learn is None else \
            np.broadcast_to(np.asarray(learn, dtype=bool), (n,)).copy()
        if learn_flags.any():
            self._check_trainable()
        if n == 0:
            return np.zeros((0, self._readout_pop().size))
        mon_steps = (self.T if monitor == "last" else n * self.T) if self.record else 0
        out, mon = self._run(streams, n, train_flags, learn_flags, mon_steps)
        if self.record:
            if monitor == "windows":   # (n*T, size) -> (T, n windows, size)
                self.monitor = {k: m.reshape(n, self.T, -1).transpose(1, 0, 2)
                                for k, m in mon.items()}
            else:
                self.monitor = {k: m[:, None, :] for k, m in mon.items()}
        return out

    def _readout_pop(self):
        c = self.circuit
        pop, _ = c.readout or (c.populations[-1].name, c.populations[-1].output)
        return c.population(pop)

    def _snapshot(self) -> tuple:
        """Copies of the state and weights, restored if a run does not complete."""
        return ({k: v.copy() for k, v in self.state.items()},
                {k: v.copy() for k, v in getattr(self, "qstate", {}).items()},
                {k: np.array(v, copy=True) for k, v in self.weights.items()})

    def _restore(self, snapshot: tuple) -> None:
        """Back to a :meth:`_snapshot` (the same dicts, so references to them stay valid)."""
        state, qstate, weights = snapshot
        self.state.update(state)
        self.weights.update(weights)
        if self.fixed:
            self.qstate.update(qstate)

    def _run(self, streams, n, train_flags, learn_flags, mon_steps: int = 0):
        """One Lava run; ``(readouts (n, n_out), {"pop.var": (mon_steps, size)})``."""
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg

        import tempfile
        from pathlib import Path

        from neuro_pc.backends.lava.lifecycle import supervised

        before = self._snapshot()
        with tempfile.TemporaryDirectory(prefix="neuro_pc_lava_") as error_dir:
            t0 = time.perf_counter()
            net = _Network(self, streams, n, train_flags, learn_flags, error_dir, mon_steps)
            t1 = time.perf_counter()
            try:
                # every process of the run ends with it, also on Ctrl-C, SIGTERM or the
                # parent's death; stop() is bounded (lifecycle.py)
                with supervised(net.stop, lambda: net.anchor.runtime):
                    cfg = Loihi2SimCfg(select_tag=self.tag,
                                       exception_proc_model_map=net.model_map)
                    net.anchor.run(condition=RunSteps(num_steps=n * self.T), run_cfg=cfg)
                    t2 = time.perf_counter()
                    errors = sorted(Path(error_dir).glob("*.err"))
                    if errors:
                        raise LavaRunError("the Lava run failed (all processes stopped):\n"
                                           + "\n".join(e.read_text() for e in errors))
                    out, mon = net.collect()
                    t3 = time.perf_counter()
            except BaseException:
                self._restore(before)   # an interrupted read-back changes nothing either
                raise
        self.last_run = {"steps": n * self.T, "build_s": t1 - t0, "run_s": t2 - t1,
                         "read_s": t3 - t2, "saturated": net.saturated}
        if self.fixed and any(net.saturated.values()):
            hit = {k: v for k, v in net.saturated.items() if v}
            warnings.warn(FixedPointWarning(
                f"fixed_pt: values saturated at the {self.precision.state_bits}-bit state range "
                f"during the run ({hit} values clipped, per population): the activity or the "
                f"inputs exceed ±{2.0 ** (self.precision.state_bits - 1 - self.precision.frac_bits):g}"
                "; lower frac_bits, or scale the inputs/weights"), stacklevel=4)
        return out, mon


class _Layout(NamedTuple):
    """Which process each projection of a circuit runs as in a :class:`_Network`, and
    what each population sends (:meth:`_Network._layout`)."""

    #: {population: the variables it sends}
    outs: dict
    #: {plastic or tied-to projection: the projections tied to it} -> PlasticDense
    groups: dict
    #: {projection: its learning block} -> LearningDense
    blocks: dict
    #: {projection: correlation geometry} -> Lava's Conv
    convs: dict
    #: the projections -> Dense
    dense: list
    #: fixed_pt: {population: [(port, the in-port of a Conv)]}
    shifted: dict
    #: fixed_pt: {population: {the in-port of a Conv: its weight exponent}}
    shifts: dict


class _Network:
    """The processes of one run, built from a simulator's current state and weights.

    They are created and connected in one order, which Lava's compiler and the seeds
    can depend on: the populations, then the fixed projections (``Dense``), the
    convolutions (``Conv``), the learning blocks (``LearningDense``) and the plastic
    projections (``PlasticDense``)."""

    def __init__(self, sim: LavaSimulator, streams, n, train_flags, learn_flags, error_dir,
                 mon_steps: int = 0):
        self.sim = sim
        c = sim.circuit
        self.mon_steps = int(mon_steps)
        #: the run: its windows, its per-window flags, the folder its processes report errors to
        self.n_windows, self.error_dir = n, error_dir
        self.train_flags, self.learn_flags = train_flags, learn_flags
        self.model_map = {}
        readout_pop = sim._readout_pop()
        self.readout = (readout_pop.name,
                        (c.readout or (readout_pop.name, readout_pop.output))[1])
        layout = self._layout()
        self._populations(layout, streams)
        self.anchor = self.pops[c.populations[0].name]

        # fixed projections -> Lava Dense
        self.plan = {}
        for proj in layout.dense:
            self._dense(proj)

        # convolutions -> Lava's own Conv (the kernel fixed for the run)
        self.convs = {}
        for name in layout.convs:
            self._conv(c.projection(name))

        # learning blocks -> Lava LearningDense (Lava's learning engine)
        self.blocks = {}
        for name, ep in layout.blocks.items():
            self._learning_block(name, ep)

        # plastic projections (and the projections tied to them) -> PlasticDense
        self.plastic = {}
        for name, ties in layout.groups.items():
            self._plastic_dense(name, ties)

    def _state(self, pop: str, var: str):
        """The state ``pop.var`` the run starts from (fixed_pt: the integers)."""
        sim = self.sim
        return sim.qstate[f"{pop}.{var}"] if sim.fixed else sim.state[f"{pop}.{var}"]

    # -- which process each projection runs as ---------------------------------------
    def _layout(self) -> _Layout:
        """Sort the projections into Dense, Conv, learning blocks and PlasticDense
        groups, and collect the variables each population must send."""
        from neuro_pc.backends.lava.conv import lava_conv_projections

        sim, c = self.sim, self.sim.circuit
        # which variables each population must send
        outs = {p.name: set() for p in c.populations}
        groups = {}
        blocks = dict(sim.plan.projections) if sim.plan is not None else {}
        #: projections that run as Lava's Conv (the rest of the convolutions: Dense)
        conv_projs = lava_conv_projections(c)
        convish = {p.name for p in c.projections if c.conv_of(p) is not None}
        if sim.fixed:
            dense_projs = [p for p in c.projections if p.name not in blocks
                           and p.name not in conv_projs]
        else:
            dense_projs = [p for p in c.projections if p.name in convish
                           and p.name not in conv_projs]
            for proj in c.stored:
                if proj.name in blocks or proj.name in convish:
                    continue
                ties = [t for t in c.projections if t.tied is not None and t.tied.to == proj.name]
                if proj.plastic or ties:
                    groups[proj.name] = ties
                else:
                    dense_projs.append(proj)
        for proj in c.projections:
            if proj.name not in blocks:
                outs[proj.source].add(c.source_variable(proj))
        shifted, shifts = self._fixed_convs(conv_projs)
        for name in groups:
            proj = c.projection(name)
            if proj.plastic:
                post, pre = codegen.rule_variables(proj)
                outs[proj.target].update(post)
                outs[proj.source].update(pre)
        return _Layout(outs, groups, blocks, conv_projs, dense_projs, shifted, shifts)

    def _fixed_convs(self, conv_projs) -> tuple[dict, dict]:
        """fixed_pt: each Lava Conv arrives on an in-port of its own, where its exponent
        is applied. Sets :attr:`conv_params` (``{projection: (geometry, dense params)}``)
        and returns :attr:`_Layout.shifted` and :attr:`_Layout.shifts`."""
        sim, c = self.sim, self.sim.circuit
        shifted = {p.name: [] for p in c.populations}
        shifts = {p.name: {} for p in c.populations}
        self.conv_params = {}
        if not sim.fixed:
            return shifted, shifts
        from neuro_pc.backends.lava.conv import correlation

        for name in conv_projs:
            proj = c.projection(name)
            if proj.target in sim.lif:
                raise FixedPointError(
                    f"projection {name!r} is a convolution into {proj.target!r}, which runs "
                    "on Lava's LIF: in fixed_pt Lava's Conv applies no weight exponent and "
                    "Lava's LIF cannot apply one on its input; use floating_pt or "
                    "lava_lif=False")
            shifted[proj.target].append((proj.port, f"conv_{name}"))
            geom, kernel = correlation(c, sim.weights, proj)
            dp = dense_params(kernel, sim.precision, spike_source=proj.source in sim.lif)
            self.conv_params[name] = (geom, dp)
            shifts[proj.target][f"conv_{name}"] = dp.weight_exp
        return shifted, shifts

    # -- populations -----------------------------------------------------------------
    def _populations(self, layout: _Layout, streams) -> None:
        """One process per population, in the circuit's order."""
        sim, c = self.sim, self.sim.circuit
        monitored = {p.name: tuple(dict.fromkeys(v for q, v in sim.record if q == p.name))
                     for p in c.populations} if self.mon_steps else {}
        self.pops = {}
        for pop in c.populations:
            if pop.name in sim.lif:
                self._lif_population(pop, monitored.get(pop.name, ()))
            else:
                self._population(pop, layout, streams, monitored.get(pop.name, ()))

    def _population(self, pop, layout: _Layout, streams, monitor) -> None:
        """Population ``pop`` as a generated process (:mod:`neuro_pc.backends.lava.processes`)."""
        from neuro_pc.backends.lava.processes import population_classes

        sim, c, fixed, plan = self.sim, self.sim.circuit, self.sim.fixed, self.sim.plan
        T, n, blocks = sim.T, self.n_windows, layout.blocks
        in_ports = [p for p in pop.ports
                    if any(q.name not in layout.convs or not fixed
                           for q in c.projections_into(pop.name, p))]
        feeds = [b for b, ep in blocks.items() if c.projection(b).source == pop.name]
        code = plan.post_codes.get(pop.name) if plan is not None else None
        P, M = population_classes(
            pop.name, pop.size, variables=pop.variables, in_ports=in_ports,
            streams=tuple(pop.streams), outs=sorted(layout.outs[pop.name]),
            record=self.readout[1] if pop.name == self.readout[0] else None, fixed=fixed,
            monitor=monitor, engine_out=feeds, learning_neuron=code is not None,
            third_factor=code.third_factor if code is not None else None,
            shifted=layout.shifted.get(pop.name, ()))
        cfg = {"T": T, "train_flags": self.train_flags.astype(np.int64),
               "dt": sim._I.const(c.schedule.dt) if fixed else float(c.schedule.dt),
               "learn_flags": self.learn_flags.astype(np.int64),
               "n_steps": n * T, "mon_steps": self.mon_steps,
               "all_ports": pop.ports, "globals": sim._globals(),
               "step_source": sim._step_sources[pop.name],
               "port_range": sim.precision.state_range if fixed else None,
               "error_dir": self.error_dir, "pre_codes": {b: blocks[b].pre for b in feeds},
               "post_code": code, "frac_bits": plan.frac_bits if plan else 12,
               "shifts": layout.shifts[pop.name],
               "streams": {var: (quantize_input(streams[st], sim.precision) if fixed
                                 else np.asarray(streams[st], dtype=np.float64))
                           for var, st in pop.streams.items()}}
        init = {v: np.asarray(self._state(pop.name, v)).reshape(-1) for v in pop.variables}
        proc = P(init=init, n_windows=n, mon_steps=self.mon_steps, cfg=cfg)
        self.pops[pop.name] = proc
        self.model_map[proc] = M
        self.model_map[P] = M

    def _lif_population(self, pop, monitor) -> None:
        """Population ``pop`` as Lava's own LIF / LIFReset process and model."""
        from neuro_pc.backends.lava.processes import lif_classes

        sim = self.sim
        m, fx = sim.lif[pop.name]
        record = self.readout[1] if pop.name == self.readout[0] else None
        P, M = lif_classes(pop.name, pop.size, reset=m.reset_step is not None,
                           fixed=sim.fixed, record=record, monitor=monitor)

        def init(var):
            if var == "i" and not m.current:      # a voltage-based unit's u: the last input
                return np.zeros(pop.size, dtype=np.int64 if sim.fixed else np.float64)
            return np.asarray(self._state(pop.name, var)).reshape(-1)

        if sim.fixed:
            lif = {"du": fx.du, "dv": fx.dv, "vth": fx.vth,
                   "bias_mant": np.full(pop.size, fx.bias_mant, dtype=np.int32),
                   "bias_exp": np.full(pop.size, fx.bias_exp, dtype=np.int32),
                   "u": init("i").astype(np.int32), "v": init("v").astype(np.int32)}
        else:
            fp = m.float_params()
            lif = {"du": fp["du"], "dv": fp["dv"], "vth": fp["vth"],
                   "bias_mant": np.full(pop.size, fp["bias_mant"]), "bias_exp": 0.0,
                   "u": init("i"), "v": init("v")}
        if m.reset_step is not None:
            lif.update(reset_interval=m.reset_interval, reset_offset=m.reset_offset)
        cfg = {"T": sim.T, "one": sim.precision.one if sim.fixed else 1.0,
               "n_steps": self.n_windows * sim.T, "mon_steps": self.mon_steps,
               "error_dir": self.error_dir}
        s0 = np.asarray(self._state(pop.name, "s")).reshape(-1)
        proc = P(lif=lif, s0=s0, n_windows=self.n_windows, mon_steps=self.mon_steps, cfg=cfg)
        self.pops[pop.name] = proc
        self.model_map[proc] = M
        self.model_map[P] = M

    # -- projections -----------------------------------------------------------------
    def _dense(self, proj) -> None:
        """A fixed projection as Lava's ``Dense`` (fixed_pt: quantised, bit-accurate)."""
        from lava.proc.dense.process import Dense

        sim, c = self.sim, self.sim.circuit
        src_var = c.source_variable(proj)
        s0 = np.asarray(self._state(proj.source, src_var)).reshape(-1)
        M = effective_matrix(c, sim.weights, proj)
        spikes = proj.source in sim.lif      # a Lava LIF sends 0/1 spikes
        if sim.fixed:
            dp = dense_params(M, sim.precision, spike_source=spikes)
            self.plan[proj.name] = dp
            from lava.utils.weightutils import SignMode

            if spikes:   # binary spikes: the stored 2**F per spike is one spike
                s0 = (s0 != 0).astype(np.int64)
            d = Dense(weights=dp.weights,
                      num_message_bits=0 if spikes else sim.precision.message_bits,
                      weight_exp=dp.weight_exp, num_weight_bits=dp.num_weight_bits,
                      sign_mode=SignMode.MIXED, name=proj.name)
            d.a_buff.init = synapse(dp.weights, dp.weight_exp, s0).astype(np.int32)
        else:
            d = Dense(weights=M, num_message_bits=24, name=proj.name)
            d.a_buff.init = M @ s0
        self._out_port(proj.source, src_var).connect(d.s_in)
        d.a_out.connect(self._in_port(proj))

    def _conv(self, proj) -> None:
        """One convolution as Lava's ``Conv`` (:mod:`neuro_pc.backends.lava.conv`)."""
        from lava.proc.conv.process import Conv as LavaConv

        from neuro_pc.backends.lava.conv import (correlation, initial_output, lava_kernel,
                                                 lava_shape, wrap24)

        sim, c = self.sim, self.sim.circuit
        src_var = c.source_variable(proj)
        s0 = np.asarray(self._state(proj.source, src_var)).reshape(-1)
        spikes = proj.source in sim.lif
        if sim.fixed:
            geom, dp = self.conv_params[proj.name]
            if spikes:
                s0 = (s0 != 0).astype(np.int64)
            w = lava_kernel(geom, dp.weights.astype(np.int64)).astype(np.int32)
            a0 = wrap24(initial_output(geom, dp.weights.astype(np.int64), s0.astype(np.int64)))
            d = LavaConv(weight=w, input_shape=lava_shape(geom.in_shape),
                         padding=geom.padding[::-1], stride=geom.stride[::-1],
                         num_message_bits=0 if spikes else sim.precision.message_bits,
                         name=proj.name)
            d.a_buf.init = a0.astype(np.int32)
            self.plan[proj.name] = dp
            port = getattr(self.pops[proj.target], f"conv_{proj.name}")
        else:
            geom, kernel = correlation(c, sim.weights, proj)
            d = LavaConv(weight=lava_kernel(geom, kernel), input_shape=lava_shape(geom.in_shape),
                         padding=geom.padding[::-1], stride=geom.stride[::-1],
                         num_message_bits=24, name=proj.name)
            d.a_buf.init = initial_output(geom, kernel, s0)
            port = self._in_port(proj)
        C, H, W = geom.in_shape
        self._out_port(proj.source, src_var).reshape((C, H, W)).transpose([2, 1, 0]) \
            .connect(d.s_in)
        d.a_out.transpose([2, 1, 0]).reshape((geom.out_size,)).connect(port)
        self.convs[proj.name] = d

    def _learning_block(self, name: str, ep) -> None:
        """Projection ``name`` as Lava's ``LearningDense`` running its learning block
        ``ep`` (:mod:`neuro_pc.backends.lava.engine`)."""
        from neuro_pc.backends.lava.engine import learning_dense

        sim, c, plan, fixed = self.sim, self.sim.circuit, self.sim.plan, self.sim.fixed
        proj = c.projection(name)
        d = learning_dense(ep.rule, sim.units[name], fixed=fixed, weight_exp=ep.weight_exp,
                           num_weight_bits=ep.num_weight_bits,
                           graded_payload=ep.graded_payload, name=name)
        s0 = ep.pre.payload(np.asarray(self._state(proj.source, ep.pre.variable)).reshape(-1),
                            plan.mode, plan.frac_bits)
        d.a_buff.init = np.asarray(ep.initial_send(sim.units[name], s0, plan.mode),
                                   dtype=np.int32 if fixed else np.float64)
        if ep.pre.kind == "spikes":   # the engine's trace continues the circuit's
            d.x1.init = ep.pre.initial_x1(
                np.asarray(self._state(proj.source, ep.pre.trace)).reshape(-1), plan.mode,
                plan.frac_bits)
        getattr(self.pops[proj.source], f"eng_{name}").connect(d.s_in)
        d.a_out.connect(self._in_port(proj))
        post = self.pops[proj.target]
        for k in plan.post_codes[proj.target].used:
            getattr(post, f"s_out_{k}").connect(getattr(d, f"s_in_{k}"))
        self.blocks[name] = d

    def _plastic_members(self, proj, ties: list) -> tuple[list, dict, dict]:
        """A PlasticDense's members ``[(k, n_src, n_tgt)]`` (``k = 0``: ``proj``; then
        its ``ties``), how each sends ``{k: ("own" | "tied", params)}`` and each one's
        initial input ``{k: source state}``."""
        c = self.sim.circuit
        members, send, buffers = [], {}, {}
        for k, p in enumerate([proj] + ties):
            n_src = c.population(p.source).size
            n_tgt = c.population(p.target).size
            members.append((k, n_src, n_tgt))
            buffers[k] = np.asarray(self._state(p.source, c.source_variable(p))).reshape(-1)
            if k == 0:
                send[k] = ("own", {"scale": float(p.scale)})
            else:
                send[k] = ("tied", {"scale": float(p.scale), "fn": p.tied.fn,
                                    "transpose": bool(p.tied.transpose),
                                    "tied_scale": float(p.tied.scale)})
        return members, send, buffers

    def _plastic_dense(self, name: str, ties: list) -> None:
        """Projection ``name`` and the projections tied to it as one ``PlasticDense``
        applying the IR rule (:mod:`neuro_pc.backends.lava.processes`)."""
        from neuro_pc.backends.lava.processes import plastic_dense_classes

        sim, c, n = self.sim, self.sim.circuit, self.n_windows
        proj = c.projection(name)
        members, send, buffers = self._plastic_members(proj, ties)
        post, pre = codegen.rule_variables(proj) if proj.plastic else ((), ())
        carried = c.source_variable(proj)
        P, M = plastic_dense_classes(
            name, sim.weights[name].shape, members=members, post_vars=post, pre_vars=pre,
            post_size=c.population(proj.target).size,
            pre_size=c.population(proj.source).size,
            pre_from_input=carried if carried in pre else None)
        cfg = {"T": sim.T, "train_flags": self.train_flags.astype(np.int64),
               "learn_flags": self.learn_flags.astype(np.int64) if proj.plastic
               else np.zeros(n, dtype=np.int64),
               "dt": float(c.schedule.dt), "every_step": bool(proj.rule and
                                                              proj.rule.every_step),
               "send": send, "mask": sim.masks.get(name),
               "transforms": tuple(proj.rule.transforms) if proj.rule else (),
               "rule_params": dict(proj.rule.params) if proj.rule else {},
               "post_size": c.population(proj.target).size,
               "pre_size": c.population(proj.source).size,
               "rule_source": sim._rule_sources.get(name), "globals": codegen.float_globals(),
               "error_dir": self.error_dir}
        pd = P(weights=np.array(sim.weights[name], dtype=float), buffers=buffers, cfg=cfg)
        self.model_map[pd] = M
        self.model_map[P] = M
        for k, p in enumerate([proj] + ties):
            self._out_port(p.source, c.source_variable(p)).connect(getattr(pd, f"s_in_{k}"))
            getattr(pd, f"a_out_{k}").connect(self._in_port(p))
        for v in post:
            self._out_port(proj.target, v).connect(getattr(pd, f"post_{v}"))
        for v in pre:
            if v != carried:
                self._out_port(proj.source, v).connect(getattr(pd, f"pre_{v}"))
        self.plastic[name] = pd

    # -- ports -----------------------------------------------------------------------
    def _out_port(self, pop: str, var: str):
        """The out-port sending ``pop.var`` (a Lava LIF's spikes: its ``s_out``)."""
        if pop in self.sim.lif:
            if var != "s":
                raise ValueError(f"{pop} is Lava's LIF: it sends its spikes only, not {var}")
            return self.pops[pop].s_out
        return getattr(self.pops[pop], f"out_{var}")

    def _in_port(self, proj):
        """The target population's in-port of ``proj`` (Lava's third-factor port
        for the error port of a learning neuron; a Lava LIF's ``a_in``)."""
        if proj.target in self.sim.lif:
            return self.pops[proj.target].a_in
        code = self.sim.plan.post_codes.get(proj.target) if self.sim.plan is not None else None
        if code is not None and code.third_factor == proj.port:
            return self.pops[proj.target].a_third_factor_in
        return getattr(self.pops[proj.target], f"in_{proj.port}")

    # -- the run's end ---------------------------------------------------------------
    def stop(self) -> None:
        """Stop the runtime if it was created (safe to call after any failure)."""
        runtime = getattr(self.anchor, "runtime", None) or getattr(self.anchor, "_runtime", None)
        if runtime is not None:
            self.anchor.stop()

    def collect(self) -> tuple[np.ndarray, dict]:
        """Read the readouts, the state and the weights back into the simulator;
        return the readouts and the monitors ``{"pop.var": (mon_steps, size)}``."""
        sim, c = self.sim, self.sim.circuit
        rec = np.asarray(self.pops[self.readout[0]].rec.get()).T
        #: per population, values clipped to the state range in the run (fixed_pt; the
        #: project's processes count them, Lava's own LIF saturates v silently)
        self.saturated = {name: int(np.asarray(p.n_sat.get()).reshape(-1)[0])
                          for name, p in self.pops.items()
                          if hasattr(p, "n_sat")} if sim.fixed else {}
        mon = {}
        if self.mon_steps:
            for pop, v in sim.record:
                m = np.asarray(getattr(self.pops[pop], f"mon_{v}").get()).T   # (steps, size)
                m = m.reshape(self.mon_steps, -1)
                mon[f"{pop}.{v}"] = (np.ldexp(m.astype(np.int64).astype(float),
                                              -sim.var_frac_bits[f"{pop}.{v}"]) if sim.fixed
                                     else m.astype(np.float64))
        lava_var = {"i": "u", "v": "v", "s": "s"}
        for pop in c.populations:
            proc = self.pops[pop.name]
            for v in pop.variables:
                var = getattr(proc, lava_var[v]) if pop.name in sim.lif else \
                    getattr(proc, f"v_{v}")
                val = np.asarray(var.get()).reshape(1, -1)
                if sim.fixed:
                    q = val.astype(np.int64)
                    sim.qstate[f"{pop.name}.{v}"] = q
                    sim.state[f"{pop.name}.{v}"] = np.ldexp(
                        q.astype(float), -sim.var_frac_bits[f"{pop.name}.{v}"])
                else:
                    sim.state[f"{pop.name}.{v}"] = val.astype(np.float64)
        for name, pd in self.plastic.items():
            sim.weights[name] = np.asarray(pd.W.get(), dtype=np.float64).reshape(
                sim.weights[name].shape)
        for name, d in self.blocks.items():
            ep = sim.plan.projections[name]
            u = np.asarray(d.weights.get()).reshape(sim.weights[name].shape)
            sim.units[name] = u.astype(np.int64) if sim.fixed else u.astype(np.float64)
            sim.weights[name] = ep.from_units(sim.units[name])
        if sim.fixed:
            return np.ldexp(rec.astype(np.int64).astype(float),
                            -sim.var_frac_bits[".".join(self.readout)]), mon
        return rec.astype(np.float64), mon


__all__ = ["LavaSimulator", "LavaRunError", "TAGS", "LEARNING_MODES", "CircuitError"]
