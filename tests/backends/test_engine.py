"""Circuits learning on Lava's learning engine (LavaSimulator(learning="engine")) against
the reference's emulation (EngineSimulator): fixed_pt bit for bit, floating_pt to 1e-9,
while learning, for rate and spiking FA/DFA; the float engine against the IR's own
update; the executed check; saving and re-running a trained engine network."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hardware_targets.onchip import OnChipError, execution_problems, plan_onchip
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.backends.reference.engine import EngineSimulator
from neuro_pc.data import load_digits
from neuro_pc.ir import load_artifact
from neuro_pc.models import mlp
from neuro_pc.models.spiking import Trace, spiking_mlp

pytest.importorskip("lava", exc_type=ImportError)
pytestmark = pytest.mark.lava

CHIP_TRACE = Trace(decay=math.exp(-1 / 4), impulse=0.25, window_reset=False)
D = load_digits()
X, Y = D.x_train, D.one_hot(D.y_train)


def _lava(circuit, tag, **kw):
    from neuro_pc.backends.lava import LavaSimulator

    return LavaSimulator(circuit, seed=0, tag=tag, learning="engine", **kw)


def _same(lava, emu, tag):
    for k in emu.units:
        if tag == "fixed_pt":
            np.testing.assert_array_equal(lava.units[k], emu.units[k], err_msg=k)
        else:
            np.testing.assert_allclose(lava.units[k], emu.units[k], rtol=1e-9, atol=1e-12,
                                       err_msg=k)
        np.testing.assert_allclose(lava.weights[k], emu.weights[k], rtol=1e-9, atol=1e-12)


CIRCUITS = {
    "rate_fa": lambda: mlp([64, 16, 10], rule="fa", act="relu", eta=0.05),
    "rate_dfa_2layer": lambda: mlp([64, 12, 12, 10], rule="dfa", act="relu", eta=0.05),
    "spiking_fa": lambda: spiking_mlp([64, 12, 10], rule="fa", window=12, eta=0.05,
                                      trace=CHIP_TRACE),
}


@pytest.mark.parametrize("tag", ["fixed_pt", "floating_pt"])
@pytest.mark.parametrize("name", ["rate_fa", "spiking_fa"])
def test_lava_learning_engine_equals_the_emulation(name, tag):
    c = CIRCUITS[name]()
    n = 12
    lava, emu = _lava(c, tag), EngineSimulator(c, seed=0, tag=tag)
    assert lava.plan.as_dict() == emu.plan.as_dict()
    w0 = {k: v.copy() for k, v in emu.units.items()}
    r_l = lava.run_windows(X[:n], Y[:n], train=True)
    r_e = emu.run_windows(X[:n], Y[:n], train=True)
    assert any(not np.array_equal(w0[k], emu.units[k]) for k in w0)   # it learned
    if tag == "fixed_pt":
        np.testing.assert_array_equal(r_l, r_e)
        for k in emu.qstate:
            np.testing.assert_array_equal(lava.qstate[k], emu.qstate[k], err_msg=k)
    else:
        np.testing.assert_allclose(r_l, r_e, rtol=1e-9, atol=1e-12)
    _same(lava, emu, tag)
    # a second run continues from the learned weights (and Lava truncates them again)
    np.testing.assert_array_equal(lava.predict(X[n:n + 6]), emu.predict(X[n:n + 6]))


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["fixed_pt", "floating_pt"])
@pytest.mark.parametrize("name", list(CIRCUITS))
def test_lava_learning_engine_equals_the_emulation_over_many_windows(name, tag):
    c = CIRCUITS[name]()
    lava, emu = _lava(c, tag), EngineSimulator(c, seed=0, tag=tag)
    lava.train(X[:60], Y[:60], epochs=2, seed=1)
    emu.train(X[:60], Y[:60], epochs=2, seed=1)
    _same(lava, emu, tag)
    np.testing.assert_array_equal(lava.predict(X[:50]), emu.predict(X[:50]))


@pytest.mark.parametrize("name", ["rate_fa", "spiking_fa"])
def test_float_engine_is_the_ir_update(name):
    """floating_pt has no rounding: the compiled rule (rails, trace scales, the scaling
    constants, the decays folded in, the engine's own spike traces starting from the
    circuit's) gives the IR's update; only the tiny payload that stands for a zero value
    differs."""
    c = CIRCUITS[name]()
    emu = EngineSimulator(c, seed=0, tag="floating_pt")
    ref = ReferenceSimulator(c, emu.weights, seed=0)
    for i in range(30):
        emu.present(X[i:i + 1], Y[i:i + 1])
        ref.present(X[i:i + 1], Y[i:i + 1])
    for k in emu.weights:
        np.testing.assert_allclose(emu.weights[k], ref.weights[k], rtol=1e-9, atol=1e-12)


def test_fixed_engine_update_matches_the_ir_when_executed():
    from neuro_pc.backends.lava.engine import execute_plan
    from neuro_pc.backends.reference.engine import window_end_activity

    c = mlp([64, 32, 10], rule="fa", act="relu", eta=0.01)
    w = c.init_weights(0)
    plan = plan_onchip(c, w, "fixed_pt", activity=window_end_activity(c, w, X[:200], Y[:200]))
    res = execute_plan(c, w, plan, X[:100], Y[:100])
    for name, ex in res.items():
        assert ex["epochs"] == 100
        assert abs(ex["dw_ratio"] - 1) <= 0.1 and ex["correlation"] >= 0.99, (name, ex)
        assert execution_problems(ex) == []
    # a learning rate the engine cannot hold is reported, not hidden
    bad = dict(res["W1"], dw_ratio=1.3)
    assert execution_problems(bad)[0].startswith("learning-rate error +30 %")


def test_a_trained_engine_network_is_saved_and_rerun(tmp_path):
    from neuro_pc.backends.lava import LavaSimulator

    c = CIRCUITS["rate_fa"]()
    lava = _lava(c, "fixed_pt")
    lava.train(X[:20], Y[:20], epochs=1, seed=0)
    path = lava.save(tmp_path / "onchip.npz")
    art = load_artifact(path)
    assert art.metadata["onchip"]["tag"] == "fixed_pt"
    again = LavaSimulator.from_artifact(art, tag="fixed_pt", learning="engine")
    for k in lava.units:      # the same register values, not re-quantised weights
        np.testing.assert_array_equal(again.units[k], lava.units[k])
    emu = EngineSimulator.from_artifact(art, tag="fixed_pt")
    np.testing.assert_array_equal(again.predict(X[:30]), emu.predict(X[:30]))
    assert again.plan.as_dict()["projections"] == lava.plan.as_dict()["projections"]


def test_engine_mode_names_what_cannot_learn_on_chip():
    from neuro_pc.backends.lava import LavaSimulator

    c = mlp([8, 6, 4], rule="fa", act="tanh")     # h1.r = tanh: signed pre activity
    with pytest.raises(OnChipError, match="W2: pre.r of population 'h1' = tanh"):
        LavaSimulator(c, tag="fixed_pt", learning="engine")
    with pytest.raises(ValueError, match="unknown learning mode 'chip'"):
        LavaSimulator(c, tag="fixed_pt", learning="chip")
