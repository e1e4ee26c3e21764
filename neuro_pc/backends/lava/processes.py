"""Lava processes and process models built for one circuit.

A process says what (ports, Vars); a process model says how (``run_spk``).
Populations and weight-owning projections have per-circuit port and Var
names, so their classes are made here at compile time (``type(...)``) and
handed to Lava through ``Loihi2SimCfg(exception_proc_model_map=...)``.

* :func:`population_classes` — one population: in-ports ``in_<port>`` (the
  summed projections), the streamed variables' data (``cfg["streams"]``: one row
  per window of the run, held by the process: no source process, no channel),
  out-ports ``out_<var>`` (graded spikes: the variable's value), Vars
  ``v_<var>`` and ``rec`` (the readout at the end of every window), and
  ``mon_<var>`` for every monitored variable (its value after every step of
  the run's last ``cfg["mon_steps"]`` steps: ``(n, mon_steps)``).
  ``floating_pt`` runs the IR statements in float64; ``fixed_pt`` in the
  integer arithmetic of :mod:`neuro_pc.backends.lava.fixed`.
* :func:`plastic_dense_classes` — ``PlasticDense``: a weight matrix ``W``
  applying the IR rule (floating_pt), plus the *tied* projections that read
  its current weights (``Wᵀ`` for BP, ``sign(W)ᵀ`` for sign-symmetry): the
  weights live in one process, so weight transport is a local read here.
  Unlike Lava's ``Dense`` (which sends ``W @ s`` computed at the previous
  step), it multiplies at send time, so a window-end update is seen by the
  very next step, as in the reference.

All models count steps from the start of the run: ``t = time_step - 1``,
window ``t // T``, step in window ``tw = t % T``.

This module imports Lava; import it only through the simulator.
"""
from __future__ import annotations

import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

#: a hook for tests: called as HOOKS["step"](name, t) from every population step
HOOKS: dict = {}


def _report_failure(cfg: dict, who: str, t: int) -> None:
    """Write the current exception to ``cfg["error_dir"]/<who>.err`` (read by the driver).

    Lava 0.10 hangs when a process model raises inside ``run_spk``, so the
    models never let an exception escape: they record it, keep exchanging
    messages (so no peer blocks) and skip their computation for the rest of the
    run; the driver raises :class:`LavaRunError` after the run and ``stop()``.
    """
    import os
    import traceback

    path = os.path.join(cfg["error_dir"], f"{who}.err")
    with open(path, "w") as fh:
        fh.write(f"{who} failed at step {t}:\n{traceback.format_exc()}")


def _finish(model_cls, proc_cls, tag_name):
    return implements(proc=proc_cls, protocol=LoihiProtocol)(
        requires(CPU)(tag(tag_name)(model_cls)))


# -- populations ---------------------------------------------------------------
def population_classes(name: str, size: int, *, variables, in_ports, streams, outs,
                       record: str | None, fixed: bool, monitor=(), engine_out=(),
                       learning_neuron: bool = False, third_factor: str | None = None,
                       shifted=()):
    """(Process class, ProcessModel class) for one population.

    record: the readout variable (``rec``: its value at each window's last step);
    monitor: variables recorded after every step into ``mon_<var>``.

    On-chip learning (``LavaSimulator(learning="engine")``): engine_out names the
    learning blocks this population feeds; each gets an out-port ``eng_<block>``
    sending the block's payload (``cfg["pre_codes"][block]``). learning_neuron:
    the population is behind learning blocks: its Process and ProcessModel are
    built on Lava's learning-neuron bases (``LearningNeuronProcess``,
    ``LearningNeuronModelFloat/Fixed``), whose ports ``s_out_y1..y3`` and
    ``s_out_bap`` carry the post traces and the back-propagating action potential
    (``cfg["post_code"]``); third_factor: the port whose projections arrive at
    Lava's third-factor port ``a_third_factor_in`` instead of ``in_<port>``.

    shifted (``fixed_pt``): ``(port, in-port name)`` pairs: in-ports of their own
    for projections whose process applies no weight exponent (Lava's ``Conv``);
    what arrives is shifted by ``cfg["shifts"][name]`` (``<<`` if positive, an
    arithmetic ``>>`` if negative: what Lava's ``Dense`` does in its synapse) and
    added to the port before it saturates.
    """
    variables, in_ports, streams, outs, monitor, engine_out, shifted = map(
        tuple, (variables, in_ports, streams, outs, monitor, engine_out, shifted))
    port_attr = {p: ("a_third_factor_in" if p == third_factor else f"in_{p}") for p in in_ports}
    bases = (AbstractProcess,)
    if learning_neuron:
        from lava.magma.core.process.neuron import LearningNeuronProcess

        bases = (LearningNeuronProcess, AbstractProcess)

    class Population(*bases):
        def __init__(self, *, init: dict, n_windows: int, mon_steps: int = 0, **params):
            if learning_neuron:
                LearningNeuronProcess.__init__(self, shape=(size,), learning_rule=None,
                                               name=name, **params)
            else:
                AbstractProcess.__init__(self, name=name, **params)
            for p in in_ports:
                if port_attr[p] != "a_third_factor_in":
                    setattr(self, port_attr[p], InPort(shape=(size,)))
            for _, attr in shifted:
                setattr(self, attr, InPort(shape=(size,)))
            for b in engine_out:
                setattr(self, f"eng_{b}", OutPort(shape=(size,)))
            for v in outs:
                setattr(self, f"out_{v}", OutPort(shape=(size,)))
            for v in variables:
                setattr(self, f"v_{v}", Var(shape=(size,), init=init[v]))
            self.rec = Var(shape=(size, max(n_windows, 1)), init=0)
            self.n_sat = Var(shape=(1,), init=0)   # fixed_pt: values clipped to the state range
            for v in monitor:
                setattr(self, f"mon_{v}", Var(shape=(size, max(mon_steps, 1)), init=0))

    Population.__name__ = Population.__qualname__ = f"Population_{name}"
    if learning_neuron:
        from lava.magma.core.model.py.neuron import (LearningNeuronModelFixed,
                                                     LearningNeuronModelFloat)

        base = LearningNeuronModelFixed if fixed else LearningNeuronModelFloat
    else:
        base = PyLoihiProcessModel
    dtype = np.int32 if fixed else float
    attrs = {}
    for p in in_ports:
        attrs[port_attr[p]] = LavaPyType(PyInPort.VEC_DENSE, dtype, precision=24)
    for _, attr in shifted:
        attrs[attr] = LavaPyType(PyInPort.VEC_DENSE, dtype, precision=24)
    for b in engine_out:
        attrs[f"eng_{b}"] = LavaPyType(PyOutPort.VEC_DENSE, dtype, precision=24)
    for v in outs:
        attrs[f"out_{v}"] = LavaPyType(PyOutPort.VEC_DENSE, dtype, precision=24)
    for v in variables:
        attrs[f"v_{v}"] = LavaPyType(np.ndarray, dtype, precision=24)
    attrs["rec"] = LavaPyType(np.ndarray, dtype, precision=24)
    attrs["n_sat"] = LavaPyType(np.ndarray, np.int64 if fixed else float)
    for v in monitor:
        attrs[f"mon_{v}"] = LavaPyType(np.ndarray, dtype, precision=24)

    def __init__(self, proc_params):
        base.__init__(self, proc_params)
        cfg = proc_params["cfg"]
        self._T = int(cfg["T"])
        self._train = np.asarray(cfg["train_flags"])
        self._learn = np.asarray(cfg.get("learn_flags", self._train))
        self._pre_codes = cfg.get("pre_codes", {})
        self._post_code = cfg.get("post_code")
        self._streams = {s: np.asarray(d, dtype=np.int64 if fixed else np.float64)
                         for s, d in cfg.get("streams", {}).items()}
        self._frac_bits = cfg.get("frac_bits", 12)
        self._mode = "fixed" if fixed else "float"
        self._dither = self._post_code.generator() if self._post_code is not None else None
        self._dt = cfg["dt"]
        self._all_ports = tuple(cfg["all_ports"])
        namespace = dict(cfg["globals"])
        exec(compile(cfg["step_source"], f"<neuro_pc lava {name}>", "exec"), namespace)
        self._step = namespace["step"]
        self._I = namespace.get("I")
        self._sat = cfg.get("port_range")
        self._shifts = {attr: int(cfg.get("shifts", {})[attr]) for _, attr in shifted}
        self._cfg = cfg
        self._failed = False
        # monitors hold the last mon_steps steps of the run: step t goes to column t - t0
        self._mon_t0 = int(cfg.get("n_steps", 0)) - int(cfg.get("mon_steps", 0))

    def run_spk(self):
        t = self.time_step - 1
        w, tw = divmod(t, self._T)
        P = {}
        for p in self._all_ports:
            extra = [attr for q, attr in shifted if q == p]
            if p in in_ports or extra:
                a = getattr(self, port_attr[p]).recv() if p in in_ports else \
                    np.zeros(size, dtype=np.int64)
                if fixed:
                    a = a.astype(np.int64)
                    for attr in extra:      # Lava's Conv: its exponent is applied here
                        part = getattr(self, attr).recv().astype(np.int64)
                        e = self._shifts[attr]
                        a = a + (part << e if e > 0 else part >> -e)
                    self.n_sat[0] += np.count_nonzero((a < self._sat[0]) | (a > self._sat[1]))
                    a = np.clip(a, *self._sat)
                P[p] = a.reshape(1, -1)
            else:
                P[p] = 0 if fixed else 0.0
        # streams: the run's data, one row per window (held by the process itself)
        X = {s: self._streams[s][w:w + 1] for s in streams}
        if fixed:
            V = {v: getattr(self, f"v_{v}").astype(np.int64).reshape(1, -1) for v in variables}
            train = int(self._train[w])
        else:
            V = {v: getattr(self, f"v_{v}").reshape(1, -1) for v in variables}
            train = float(self._train[w])
        if not self._failed:
            try:
                if "step" in HOOKS:
                    HOOKS["step"](name, t)
                before = self._I.saturated if fixed else 0
                new = self._step(V, P, X, tw, train, self._dt)
                if fixed:
                    self.n_sat[0] += self._I.saturated - before
                for v in variables:
                    val = np.broadcast_to(new[v], (1, size)).reshape(size)
                    setattr(self, f"v_{v}", val.astype(dtype) if fixed else
                            np.array(val, dtype=float))
            except BaseException:
                self._failed = True
                _report_failure(self._cfg, f"population_{name}", t)
        for v in outs:
            getattr(self, f"out_{v}").send(getattr(self, f"v_{v}"))
        for b in engine_out:
            code = self._pre_codes[b]
            getattr(self, f"eng_{b}").send(
                code.payload(getattr(self, f"v_{code.variable}"), self._mode, self._frac_bits))
        if self._post_code is not None:
            code = self._post_code
            y = code.encode({v: getattr(self, f"v_{v}") for v in code.variables()}, size,
                            self._mode, self._frac_bits, self._dither,
                            code.active(tw, self._T, self._learn[w]))
            self.y1, self.y2, self.y3 = (np.asarray(r, dtype=dtype) for r in y)
            for k in code.used:      # only the traces the rules read are connected
                getattr(self, f"s_out_{k}").send(getattr(self, k))
        if record is not None and tw == self._T - 1:
            self.rec[:, w] = getattr(self, f"v_{record}")
        if monitor and t >= self._mon_t0:
            for v in monitor:
                getattr(self, f"mon_{v}")[:, t - self._mon_t0] = getattr(self, f"v_{v}")

    attrs.update(__init__=__init__, run_spk=run_spk)
    model = type(f"PopulationModel_{name}", (base,), attrs)
    return Population, _finish(model, Population, "fixed_pt" if fixed else "floating_pt")


# -- Lava's own LIF ------------------------------------------------------------------
def lif_classes(name: str, size: int, *, reset: bool, fixed: bool, record: str | None,
                monitor=()):
    """(Process class, ProcessModel class) of a population that is Lava's LIF.

    The process is a subclass of Lava's ``LIF`` (``reset``: ``LIFReset``) and the
    model a subclass of Lava's own model for the tag (``PyLifModelFloat``,
    ``PyLifResetModelFloat``, ``PyLifModelBitAcc``, ``PyLifResetModelBitAcc``):
    the datapath (``subthr_dynamics``, ``spiking_activation``,
    ``reset_voltage``, ``run_spk``) is Lava's, unchanged. The subclasses only
    *observe*: ``spiking_activation`` keeps the spike vector it returns, and
    after Lava's step the model writes Vars the project reads back: ``s`` (the
    spikes, ``cfg["one"]`` each: ``2**frac_bits`` in ``fixed_pt``, 1.0 in
    ``floating_pt``), ``rec`` (the readout ``record`` at each window's last
    step) and ``mon_<var>`` (``var`` in ``i``, ``v``, ``s``; ``i`` is Lava's ``u``).

    A failure inside a step is written to ``cfg["error_dir"]``; the model then
    keeps receiving and sending (zeros) so that no peer blocks.
    """
    from lava.proc.lif import models as lif_models
    from lava.proc.lif.process import LIF, LIFReset

    proc_base = LIFReset if reset else LIF
    if fixed:
        model_base = lif_models.PyLifResetModelBitAcc if reset else lif_models.PyLifModelBitAcc
    else:
        model_base = lif_models.PyLifResetModelFloat if reset else lif_models.PyLifModelFloat
    monitor = tuple(monitor)
    lava_name = {"i": "u", "v": "v", "s": "s"}

    class LifPopulation(proc_base):
        def __init__(self, *, lif: dict, s0, n_windows: int, mon_steps: int, cfg: dict):
            proc_base.__init__(self, shape=(size,), name=name, **lif)
            self.proc_params["cfg"] = cfg
            self.s = Var(shape=(size,), init=s0)
            self.rec = Var(shape=(size, max(n_windows, 1)), init=0)
            for v in monitor:
                setattr(self, f"mon_{v}", Var(shape=(size, max(mon_steps, 1)), init=0))

    LifPopulation.__name__ = LifPopulation.__qualname__ = f"Lava{proc_base.__name__}_{name}"
    dtype = np.int32 if fixed else float
    attrs = {"s": LavaPyType(np.ndarray, dtype, precision=24),
             "rec": LavaPyType(np.ndarray, dtype, precision=24),
             # the subclass implements the subclassed process (Lava's decorator would
             # refuse to re-target its model class, so the attribute is set here)
             "implements_process": LifPopulation}
    for v in monitor:
        attrs[f"mon_{v}"] = LavaPyType(np.ndarray, dtype, precision=24)

    def __init__(self, proc_params):
        model_base.__init__(self, proc_params)
        cfg = proc_params["cfg"]
        self._cfg = cfg
        self._T = int(cfg["T"])
        self._one = cfg["one"]
        self._mon_t0 = int(cfg.get("n_steps", 0)) - int(cfg.get("mon_steps", 0))
        self._spikes = np.zeros(size, dtype=bool)
        self._failed = False

    def spiking_activation(self):
        spikes = model_base.spiking_activation(self)
        self._spikes = np.asarray(spikes, dtype=bool)
        return spikes

    def run_spk(self):
        t = self.time_step - 1
        w, tw = divmod(t, self._T)
        if self._failed:
            self.a_in.recv()
            self.s_out.send(np.zeros(size, dtype=dtype))
            return
        sent = False
        try:
            model_base.run_spk(self)        # Lava's own step: recv, dynamics, spikes, send
            sent = True
            self.s = np.where(self._spikes, self._one, 0).astype(dtype)
            if record is not None and tw == self._T - 1:
                self.rec[:, w] = getattr(self, lava_name[record])
            if monitor and t >= self._mon_t0:
                for v in monitor:
                    getattr(self, f"mon_{v}")[:, t - self._mon_t0] = getattr(self, lava_name[v])
        except BaseException:
            self._failed = True
            _report_failure(self._cfg, f"population_{name}", t)
            if not sent:
                self.s_out.send(np.zeros(size, dtype=dtype))

    attrs.update(__init__=__init__, run_spk=run_spk, spiking_activation=spiking_activation)
    model = type(f"LavaLifModel_{name}", (model_base,), attrs)
    return LifPopulation, model


# -- plastic / tied dense (floating_pt) ----------------------------------------------
def plastic_dense_classes(name: str, shape, *, members, post_vars, pre_vars, post_size,
                          pre_size, pre_from_input: str | None = None):
    """(Process class, ProcessModel class) of a ``PlasticDense`` for stored projection
    ``name`` (shape ``(n_target, n_source)``).

    members: ``[(key, n_src, n_tgt)]``; ``key`` 0 is the projection itself (if it
    sends), others the tied projections reading this matrix. pre_from_input: a
    pre-synaptic variable the rule reads that is the one the projection carries:
    it is taken from the input buffer (same step, same value) instead of a port.
    """
    members = tuple(members)
    pre_ports = tuple(v for v in pre_vars if v != pre_from_input)

    class PlasticDense(AbstractProcess):
        def __init__(self, *, weights: np.ndarray, buffers: dict, **params):
            super().__init__(name=f"PlasticDense_{name}", **params)
            self.W = Var(shape=tuple(shape), init=weights)
            for k, n_src, n_tgt in members:
                setattr(self, f"s_in_{k}", InPort(shape=(n_src,)))
                setattr(self, f"a_out_{k}", OutPort(shape=(n_tgt,)))
                setattr(self, f"buf_{k}", Var(shape=(n_src,), init=buffers[k]))
            for v in post_vars:
                setattr(self, f"post_{v}", InPort(shape=(post_size,)))
            for v in pre_ports:
                setattr(self, f"pre_{v}", InPort(shape=(pre_size,)))

    PlasticDense.__name__ = PlasticDense.__qualname__ = f"PlasticDense_{name}"
    attrs = {"W": LavaPyType(np.ndarray, float)}
    for k, _, _ in members:
        attrs[f"s_in_{k}"] = LavaPyType(PyInPort.VEC_DENSE, float)
        attrs[f"a_out_{k}"] = LavaPyType(PyOutPort.VEC_DENSE, float)
        attrs[f"buf_{k}"] = LavaPyType(np.ndarray, float)
    for v in post_vars:
        attrs[f"post_{v}"] = LavaPyType(PyInPort.VEC_DENSE, float)
    for v in pre_ports:
        attrs[f"pre_{v}"] = LavaPyType(PyInPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        PyLoihiProcessModel.__init__(self, proc_params)
        cfg = proc_params["cfg"]
        self._T = int(cfg["T"])
        self._train = np.asarray(cfg["train_flags"])
        self._learn = np.asarray(cfg["learn_flags"])
        self._dt = float(cfg["dt"])
        self._every_step = bool(cfg["every_step"])
        self._send = cfg["send"]          # key -> (kind, params)
        self._mask = cfg.get("mask")
        self._transforms = tuple(cfg.get("transforms", ()))
        self._rule = None
        if cfg.get("rule_source"):
            namespace = dict(cfg["globals"])
            exec(compile(cfg["rule_source"], f"<neuro_pc rule {name}>", "exec"), namespace)
            self._rule = namespace["rule"]
        self._muon = None
        if "muon" in self._transforms:
            from neuro_pc.rules.muon import Muon

            self._muon = Muon.from_rule(cfg.get("rule_params", {}),
                                        (int(cfg["post_size"]), int(cfg["pre_size"])))
        self._cfg = cfg
        self._failed = False

    def _term(self, key, src):
        kind, p = self._send[key]
        W = self.W
        if kind == "own":
            out = src @ W.T
        else:
            base = np.sign(W) if p["fn"] == "sign" else W
            out = src @ base if p["transpose"] else src @ base.T
            if p["tied_scale"] != 1.0:
                out = out * p["tied_scale"]
        if p["scale"] != 1.0:
            out = out * p["scale"]
        return out

    def run_spk(self):
        t = self.time_step - 1
        w, tw = divmod(t, self._T)
        for k, _, n_tgt in members:
            out = np.zeros(n_tgt)
            if not self._failed:
                try:
                    out = self._term(k, getattr(self, f"buf_{k}").reshape(1, -1)).reshape(-1)
                except BaseException:
                    self._failed = True
                    _report_failure(self._cfg, f"projection_{name}", t)
            getattr(self, f"a_out_{k}").send(out)
        for k, _, _ in members:
            setattr(self, f"buf_{k}", np.array(getattr(self, f"s_in_{k}").recv(), dtype=float))
        POST = {v: getattr(self, f"post_{v}").recv().reshape(1, -1) for v in post_vars}
        PRE = {v: getattr(self, f"pre_{v}").recv().reshape(1, -1) for v in pre_ports}
        if pre_from_input is not None:
            PRE[pre_from_input] = self.buf_0.reshape(1, -1)
        if self._failed or self._rule is None or not self._learn[w]:
            return
        if not (self._every_step or tw == self._T - 1):
            return
        try:
            self._apply_rule(POST, PRE, tw, w)
        except BaseException:
            self._failed = True
            _report_failure(self._cfg, f"projection_{name}", t)

    def _apply_rule(self, POST, PRE, tw, w):
        dW = self._rule(POST, PRE, self.W, tw, float(self._train[w]), self._dt)
        if self._muon is not None:
            dW = self._muon.step(dW)
        if self._mask is not None:
            dW = dW * self._mask
        W = self.W + dW
        for t in self._transforms:
            if t == "unit_columns":
                norms = np.linalg.norm(W, axis=0, keepdims=True)
                W = W / np.where(norms > 0, norms, 1.0)
            elif t == "unit_rows":
                norms = np.linalg.norm(W, axis=1, keepdims=True)
                W = W / np.where(norms > 0, norms, 1.0)
        self.W = W

    attrs.update(__init__=__init__, run_spk=run_spk, _term=_term, _apply_rule=_apply_rule)
    model = type(f"PlasticDenseModel_{name}", (PyLoihiProcessModel,), attrs)
    return PlasticDense, _finish(model, PlasticDense, "floating_pt")
