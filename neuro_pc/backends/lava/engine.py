"""Lava's learning engine: ``LearningDense`` with a compiled rule, and the
small processes that drive one block from recorded activity.

The rule is an :class:`hardware_targets.loihi2.engine.EngineRule` (the
engine's semantics are stated once, in that module, and emulated there);
this module builds Lava's own objects from it:

* :func:`lava_learning_rule` -> ``Loihi3FLearningRule`` (a rule reading post
  traces ``y1..y3`` sent by the post neuron) or ``Loihi2FLearningRule``;
* :func:`learning_dense` -> ``LearningDense`` with graded payloads
  (``GradedSpikeCfg.OVERWRITE``: ``x1 = payload / 2``) or binary spikes
  (``USE_REGULAR_IMPULSE``);
* :func:`run_block` runs one block on Lava's CPU simulator for given per-step
  inputs and returns what it sent at every step and its final weights: the
  execution behind ``neuro-pc check``'s ``executed`` verdicts and the
  emulation tests.

This module imports Lava; import it only through the Lava backend.
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

from hardware_targets.loihi2.engine import EngineRule


def lava_learning_rule(rule: EngineRule):
    """Lava's learning-rule object for ``rule`` (three-factor if it reads y traces)."""
    from lava.magma.core.learning.learning_rule import (Loihi2FLearningRule,
                                                        Loihi3FLearningRule)

    cls = Loihi3FLearningRule if rule.three_factor else Loihi2FLearningRule
    return cls(dw=rule.lava_dw, **rule.trace_kwargs())


def learning_dense(rule: EngineRule, weights: np.ndarray, *, fixed: bool, weight_exp: int = 0,
                   num_weight_bits: int = 8, graded_payload: bool = True, name: str | None = None):
    """A ``LearningDense`` running ``rule`` on ``weights`` ``(n_post, n_pre)``
    (``fixed``: register integers with ``weight_exp``; float: real weights)."""
    from lava.magma.core.learning.constants import GradedSpikeCfg
    from lava.proc.dense.process import LearningDense
    from lava.utils.weightutils import SignMode

    cfg = GradedSpikeCfg.OVERWRITE if rule.graded == "overwrite" else \
        GradedSpikeCfg.USE_REGULAR_IMPULSE
    kw = {"weight_exp": int(weight_exp), "num_weight_bits": int(num_weight_bits),
          "sign_mode": SignMode.MIXED} if fixed else {}
    w = np.asarray(weights, dtype=np.int32 if fixed else np.float64)
    return LearningDense(weights=w, learning_rule=lava_learning_rule(rule),
                         num_message_bits=24 if graded_payload else 0,
                         graded_spike_cfg=cfg, name=name, **kw)


# -- driving one block from recorded activity ---------------------------------------------
class BlockDriver(AbstractProcess):
    """Sends, at step ``t``, column ``t`` of ``s`` ``(n_pre, steps)`` and of the
    post signals ``bap`` ``(n_post, steps)`` and ``y`` ``(3, n_post, steps)``."""

    def __init__(self, *, s: np.ndarray, bap: np.ndarray, y: np.ndarray, fixed: bool, **kw):
        super().__init__(s=s, bap=bap, y=y, fixed=fixed, **kw)
        n_pre, n_post = s.shape[0], bap.shape[0]
        self.s_out = OutPort(shape=(n_pre,))
        self.bap_out = OutPort(shape=(n_post,))
        self.y1_out = OutPort(shape=(n_post,))
        self.y2_out = OutPort(shape=(n_post,))
        self.y3_out = OutPort(shape=(n_post,))


class BlockRecorder(AbstractProcess):
    """Records what arrives at ``a_in`` at every step into ``a`` ``(n, steps)``."""

    def __init__(self, *, n: int, steps: int, **kw):
        super().__init__(n=n, steps=steps, **kw)
        self.a_in = InPort(shape=(n,))
        self.a = Var(shape=(n, steps), init=0)


def _driver_model(dtype, tag_name):
    class Model(PyLoihiProcessModel):
        s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, dtype, precision=24)
        bap_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
        y1_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, dtype, precision=7)
        y2_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, dtype, precision=7)
        y3_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, dtype, precision=7)

        def run_spk(self):
            t = self.time_step - 1
            p = self.proc_params
            self.s_out.send(np.asarray(p["s"][:, t], dtype=dtype))
            self.bap_out.send(np.asarray(p["bap"][:, t], dtype=bool))
            for k, port in enumerate((self.y1_out, self.y2_out, self.y3_out)):
                port.send(np.asarray(p["y"][k, :, t], dtype=dtype))

    Model.__name__ = f"BlockDriverModel_{tag_name}"
    return implements(proc=BlockDriver, protocol=LoihiProtocol)(
        requires(CPU)(tag(tag_name)(Model)))


def _recorder_model(dtype, tag_name):
    class Model(PyLoihiProcessModel):
        a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, dtype, precision=24)
        a: np.ndarray = LavaPyType(np.ndarray, dtype, precision=24)

        def run_spk(self):
            self.a[:, self.time_step - 1] = self.a_in.recv()

    Model.__name__ = f"BlockRecorderModel_{tag_name}"
    return implements(proc=BlockRecorder, protocol=LoihiProtocol)(
        requires(CPU)(tag(tag_name)(Model)))


_MODELS = {"fixed_pt": (_driver_model(np.int32, "fixed_pt"), _recorder_model(np.int32, "fixed_pt")),
           "floating_pt": (_driver_model(float, "floating_pt"),
                           _recorder_model(float, "floating_pt"))}


def run_block(rule: EngineRule, weights: np.ndarray, s: np.ndarray, bap: np.ndarray,
              y: np.ndarray, *, tag_name: str = "fixed_pt", weight_exp: int = 0,
              num_weight_bits: int = 8, graded_payload: bool = True):
    """Run one ``LearningDense`` for ``s.shape[1]`` steps on Lava's CPU simulator.

    s: pre payloads ``(n_pre, steps)``; bap ``(n_post, steps)``; y ``(3, n_post,
    steps)``. Returns ``(sent (steps, n_post), final weights, x1, x2)``: what the
    block sent at each step (the first row is the initial ``a_buff``) and its
    state after the run. Every process is stopped before returning.
    """
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    fixed = tag_name == "fixed_pt"
    steps = s.shape[1]
    drv = BlockDriver(s=np.asarray(s), bap=np.asarray(bap, dtype=bool), y=np.asarray(y),
                      fixed=fixed)
    conn = learning_dense(rule, weights, fixed=fixed, weight_exp=weight_exp,
                          num_weight_bits=num_weight_bits, graded_payload=graded_payload)
    rec = BlockRecorder(n=weights.shape[0], steps=steps)
    drv.s_out.connect(conn.s_in)
    drv.bap_out.connect(conn.s_in_bap)
    drv.y1_out.connect(conn.s_in_y1)
    drv.y2_out.connect(conn.s_in_y2)
    drv.y3_out.connect(conn.s_in_y3)
    conn.a_out.connect(rec.a_in)
    dmodel, rmodel = _MODELS[tag_name]
    cfg = Loihi2SimCfg(select_tag=tag_name, exception_proc_model_map={
        drv: dmodel, rec: rmodel, BlockDriver: dmodel, BlockRecorder: rmodel})
    try:
        conn.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
        sent = np.asarray(rec.a.get()).T.copy()
        w = np.asarray(conn.weights.get()).copy()
        x1 = np.asarray(conn.x1.get()).copy()
        x2 = np.asarray(conn.x2.get()).copy()
    finally:
        conn.stop()
    return sent, w, x1, x2


# -- executing a plan's rules on the circuit's own activity ---------------------------------
def execute_plan(circuit, weights: dict, plan, x, y=None, *, seed: int = 0) -> dict:
    """Run every learning block of ``plan`` through Lava's ``LearningDense`` on the
    circuit's own activity, and compare its weight change with the IR's.

    The circuit is run on the reference backend for the rows of ``x`` (online,
    training mode, no learning; :func:`~neuro_pc.backends.reference.engine.record_windows`);
    each block is then driven, step by step, with the payloads and post traces
    that activity gives (in ``plan``'s arithmetic) for one epoch per learning
    step. ``ΔW_engine`` is its final minus its initial weights; ``ΔW_IR`` the sum
    of the IR rule's window-end updates on the same activity. Returns
    ``{projection: {"dw_ratio", "slope", "correlation", "zeroed_fraction",
    "epochs", "steps", "post_saturated"}}``: ``dw_ratio`` the median of
    ``ΔW_engine / ΔW_IR`` over the entries where ``ΔW_IR != 0``; ``slope`` the
    least-squares ratio ``<ΔW_engine, ΔW_IR> / |ΔW_IR|²``; ``zeroed_fraction``
    the share of those entries the engine left unchanged; ``post_saturated`` the
    share of active post-trace values clipped at 127 (``fixed``).
    """
    from neuro_pc.backends.reference import ReferenceSimulator
    from neuro_pc.backends.reference.engine import record_windows

    rec = record_windows(circuit, weights, x, y, seed=seed)
    n, T = next(iter(rec.values())).shape[:2]
    mode, F = plan.mode, plan.frac_bits
    tag_name = "fixed_pt" if mode == "fixed" else "floating_pt"

    def state(key):          # (n*T, size) in the plan's arithmetic
        v = rec[key].reshape(n * T, -1)
        return np.rint(v * 2.0 ** F).astype(np.int64) if mode == "fixed" else v

    # the IR's update: each window's, from its last step, summed
    ref = ReferenceSimulator(circuit, weights, seed=seed)
    end = {k: v[:, -1, :] for k, v in rec.items()}
    ir = {name: dw * n for name, dw in ref._updates(end, ref.weights).items()}
    out = {}
    for name, ep in plan.projections.items():
        proj = circuit.projection(name)
        code = plan.post_codes[ep.post]
        pre = state(f"{proj.source}.{ep.pre.variable}")
        s = np.stack([ep.pre.payload(pre[t], mode, F) for t in range(n * T)], axis=1)
        post = {v: state(f"{ep.post}.{v}") for v in code.variables()}
        rng = code.generator()
        size = circuit.population(ep.post).size
        ys = np.stack([code.encode({v: post[v][t] for v in post}, size, mode, F, rng,
                                   code.active(t % T, T, True)) for t in range(n * T)], axis=2)
        units0 = ep.to_units(weights[name], mode)
        _, units1, _, _ = run_block(ep.rule, units0, s, np.zeros((size, n * T), dtype=bool), ys,
                                    tag_name=tag_name, weight_exp=ep.weight_exp,
                                    num_weight_bits=ep.num_weight_bits,
                                    graded_payload=ep.graded_payload)
        first = units0.copy()
        if mode == "fixed":   # Lava truncates the weights at the run's first step
            k = 9 - ep.num_weight_bits
            first = (first >> k) << k
        d_engine = ep.from_units(units1) - ep.from_units(first)
        d_ir = ir[name]
        active = ys[:, :, T - 1::T]
        used = [("y1", "y2", "y3").index(k) for k in code.used]
        out[name] = dict(compare_updates(d_engine, d_ir), epochs=int(n), steps=int(n * T),
                         post_saturated=float(np.mean(active[used] >= 127))
                         if mode == "fixed" else 0.0)
    return out


def compare_updates(d_engine: np.ndarray, d_ir: np.ndarray) -> dict:
    """How an engine's weight change matches the IR's (see :func:`execute_plan`)."""
    d_engine, d_ir = np.asarray(d_engine, float).ravel(), np.asarray(d_ir, float).ravel()
    nz = np.abs(d_ir) > 1e-12 * max(np.abs(d_ir).max(initial=0.0), 1e-300)
    if not nz.any():
        return {"dw_ratio": None, "slope": None, "correlation": None, "zeroed_fraction": None}
    ratio = float(np.median(d_engine[nz] / d_ir[nz]))
    slope = float(d_engine @ d_ir / (d_ir @ d_ir))
    corr = float(np.corrcoef(d_engine, d_ir)[0, 1]) if d_engine.std() > 0 else 0.0
    return {"dw_ratio": ratio, "slope": slope, "correlation": corr,
            "zeroed_fraction": float(np.mean(d_engine[nz] == 0))}
