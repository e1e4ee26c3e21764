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
