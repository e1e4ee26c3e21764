"""The learning engine's emulation (hardware_targets.loihi2.engine) against Lava's own
LearningDense: floating_pt to 1e-9, fixed_pt bit for bit, step by step, over >= 100
learning epochs, for every rule the compiler produces for the shipped and the on-chip
circuits, and for hand-written rules that reach every branch (impulses, decays, x0 / y0 /
u dependencies, weights and sgn() as factors, constants, saturation)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hardware_targets.loihi2.engine import (EngineRule, EngineSynapses, Factor, Product,
                                            product_shift)
from hardware_targets.onchip import plan_onchip
from neuro_pc.models import mlp, shipped_circuits
from neuro_pc.models.spiking import Trace, spiking_mlp

pytest.importorskip("lava", exc_type=ImportError)
pytestmark = pytest.mark.lava

CHIP_TRACE = Trace(decay=math.exp(-1 / 4), impulse=0.25, window_reset=False)


def _drive(rule: EngineRule, n_pre, n_post, epochs, rng, fixed, graded, p_zero=0.3):
    """Per-step inputs for ``epochs`` learning epochs: payloads (zeros included:
    a zero payload is no spike), post spikes, post traces (in range, and some at 127)."""
    steps = rule.t_epoch * epochs
    if graded:
        s = rng.integers(1, 255, size=(n_pre, steps)) if fixed else \
            rng.uniform(0.5, 250.0, (n_pre, steps))
        s = np.where(rng.random(s.shape) < p_zero, 0, s)
    else:
        s = (rng.random((n_pre, steps)) < 0.4).astype(np.int64)
    bap = rng.random((n_post, steps)) < 0.3
    y = rng.integers(0, 128, size=(3, n_post, steps))
    y = np.where(rng.random(y.shape) < 0.05, 127, y)
    return s, bap, (y if fixed else y.astype(np.float64) + rng.random(y.shape))


def _compare(rule, tag, *, graded=True, epochs=110, seed=0, n_pre=9, n_post=6,
             weight_exp=-3, num_weight_bits=8):
    from neuro_pc.backends.lava.engine import run_block

    rng = np.random.default_rng(seed)
    fixed = tag == "fixed_pt"
    s, bap, y = _drive(rule, n_pre, n_post, epochs, rng, fixed, graded)
    w = rng.integers(-256, 256, size=(n_post, n_pre)) if fixed else \
        rng.normal(0.0, 2.0, (n_post, n_pre))
    sent, w_lava, x1, x2 = run_block(rule, w, s, bap, y, tag_name=tag, weight_exp=weight_exp,
                                     num_weight_bits=num_weight_bits, graded_payload=graded)
    em = EngineSynapses(rule, w, mode="fixed" if fixed else "float", weight_exp=weight_exp,
                        num_weight_bits=num_weight_bits, graded_payload=graded)
    em.start_run()
    out = np.array([em.step(s[:, t], bap[:, t], y[:, :, t]) for t in range(s.shape[1])])
    assert em.t // rule.t_epoch >= 100                       # learning epochs
    assert not np.array_equal(em.weights, w)                  # it did learn
    if fixed:   # bit for bit: every step's output (the weights, step by step), the state
        np.testing.assert_array_equal(out, sent)
        np.testing.assert_array_equal(em.weights, w_lava)
        np.testing.assert_array_equal(em.x[0], x1)
        np.testing.assert_array_equal(em.x[1], x2)
    else:
        np.testing.assert_allclose(out, sent, rtol=0, atol=1e-9 * max(1, np.abs(sent).max()))
        np.testing.assert_allclose(em.weights, w_lava, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(em.x[0], x1, rtol=1e-9, atol=1e-9)


# -- every rule the compiler produces for the shipped and the on-chip circuits ---------------
def _compiled_rules():
    circuits = list(shipped_circuits().values()) + [
        mlp([16, 12, 10], rule="fa", act="relu"), mlp([16, 12, 8, 10], rule="dfa", act="relu"),
        mlp([16, 12, 10], rule="kp", act="relu", lam=2.0 ** -6),
        spiking_mlp([16, 12, 10], rule="fa", window=16, trace=CHIP_TRACE),
        spiking_mlp([16, 12, 8, 10], rule="dfa", window=16, trace=CHIP_TRACE)]
    out = {}
    for c in circuits:
        plan = plan_onchip(c, c.init_weights(0), "fixed_pt")
        for name, ep in plan.projections.items():
            key = (ep.rule.lava_dw, ep.rule.t_epoch, ep.rule.graded, ep.rule.x1_tau,
                   ep.rule.x1_impulse)
            out.setdefault(key, (f"{c.name}.{name}", ep.rule, ep.graded_payload))
    return out


COMPILED = _compiled_rules()


def test_the_compiler_produces_the_rules_exercised_below():
    rules = [v[1] for v in COMPILED.values()]
    # graded rate FA/DFA (one epoch per window), spiking FA/DFA (one-step epochs,
    # impulses), the KP decay (the weight as a factor), the biases
    assert any(r.graded == "overwrite" and r.t_epoch > 1 for r in rules)
    assert any(r.graded == "impulse" and r.t_epoch == 1 and r.x1_impulse > 0 for r in rules)
    assert any(f.var == "w" for r in rules for p in r.products for f in p.factors)
    assert any(".b" in v[0] for v in COMPILED.values())
    assert len(COMPILED) >= 4


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["fixed_pt", "floating_pt"])
@pytest.mark.parametrize("key", list(COMPILED), ids=[v[0] for v in COMPILED.values()])
def test_compiled_rules_equal_lava(key, tag):
    name, rule, graded = COMPILED[key]
    _compare(rule, tag, graded=graded, epochs=110)


# -- hand-written rules reaching every branch of the engine --------------------------------------
HAND = {
    "3f_y0_rails": EngineRule((Product(-3, -2, "y0", (Factor("x1"), Factor("y2"))),
                               Product(5, -3, "y0", (Factor("x1"), Factor("y3")))),
                              t_epoch=1, x1_tau=255, rng_seed=11),
    "3f_mixed_deps_epoch4": EngineRule(
        (Product(-3, -2, "u", (Factor("x1"), Factor("y2"))), Product(5, 0, "y0", (Factor("x1"),)),
         Product(-1, -4, "x0", (Factor("y3"),)), Product(1, -7, "u", (Factor("w"),))),
        t_epoch=4, x1_tau=20, rng_seed=5),
    "constants_sign_saturation": EngineRule(
        (Product(7, 8, "u", (Factor("x1", -64), Factor("y1"))),
         Product(-8, 2, "y0", (Factor("w", 2, sgn=True), Factor("y3", -5))),
         Product(2, -7, "u", (Factor("w"), Factor("y2")))), t_epoch=3, x1_tau=40, rng_seed=2),
}
HAND_SPIKES = EngineRule((Product(3, -2, "u", (Factor("x1"), Factor("y2"))),
                          Product(-3, -2, "u", (Factor("x2"), Factor("y3")))),
                         t_epoch=3, graded="impulse", x1_tau=8, x1_impulse=2.5, x2_tau=40,
                         x2_impulse=1.25, rng_seed=3)


@pytest.mark.parametrize("tag", ["fixed_pt", "floating_pt"])
@pytest.mark.parametrize("name", list(HAND))
def test_hand_rules_equal_lava(name, tag):
    _compare(HAND[name], tag, epochs=100 if HAND[name].t_epoch == 1 else 105)


@pytest.mark.parametrize("tag", ["fixed_pt", "floating_pt"])
def test_binary_spikes_with_impulses_and_two_traces_equal_lava(tag):
    _compare(HAND_SPIKES, tag, graded=False, epochs=105)


def test_a_run_truncates_the_weights_and_a_trace_without_tau_is_lost():
    # Lava's model: weights are truncated to num_weight_bits at a run's first step (mixed
    # sign, 8 bits: the lowest bit goes); a trace whose tau is 0 is zero after an epoch
    rule = EngineRule((Product(1, 0, "u", (Factor("x1"),)),), t_epoch=2, rng_seed=1)
    e = EngineSynapses(rule, np.array([[5, -3]]), mode="fixed")
    e.start_run()
    assert e.weights.tolist() == [[4, -4]]
    e.step(np.array([100, 0]))
    e.step(np.array([0, 0]))                    # epoch end: x1 (tau 0) reads 0
    assert e.weights.tolist() == [[4, -4]] and e.x[0].tolist() == [0, 0]


def test_product_shift_is_lavas():
    # two 7-bit traces and the 4-bit mantissa: 18 bits, shifted right by 3 to 15
    assert product_shift(Product(1, 0, "u", (Factor("x1"), Factor("y2")))) == 3
    assert product_shift(Product(1, 0, "u", (Factor("y2"),))) == 0
    assert product_shift(Product(1, 0, "u", (Factor("w"), Factor("y2")))) == 5
    # Lava halves an even mantissa beyond 7: the canonical form is Lava's
    p = Product(-8, 2, "u", (Factor("w"),))
    assert (p.mantissa, p.exp) == (-4, 3)
    with pytest.raises(ValueError, match="outside"):
        Product(1, 9, "u")
    with pytest.raises(ValueError, match="unknown engine factor"):
        Factor("C", 3)
