"""Populations that are Lava's LIF run on Lava's own LIF process models.

A spiking FA network trained on digits (reference), deployed with
``spiking_inference`` (hidden layers ``LavaLIF``): Lava ``fixed_pt`` (Lava's
bit-accurate ``PyLifResetModelBitAcc``) equals the quantised reference step by
step and bit for bit, Lava ``floating_pt`` (``PyLifResetModelFloat``) equals the
reference; and the same on small circuits with leaks, currents, a bias,
windows that carry over, and plain ``LIF`` (no restart).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytestmark = pytest.mark.lava
pytest.importorskip("neuro_pc.backends.lava", exc_type=ImportError,
                    reason="lava-nc (Python 3.10) is not installed")

from neuro_pc.backends import compile  # noqa: E402
from neuro_pc.backends.reference import ReferenceSimulator  # noqa: E402
from neuro_pc.backends.reference.quantized import QuantizedReferenceSimulator  # noqa: E402
from neuro_pc.data.digits import load_digits  # noqa: E402
from neuro_pc.models.spiking import (LavaLIF, inference_weights, spiking_inference,  # noqa: E402
                                     spiking_mlp)

SIZES = [64, 32, 16, 10]
T = 16
REC = [(p, v) for p in ("h1", "h2", "out") for v in ("v", "s")]


@pytest.fixture(scope="module")
def digits():
    """A spiking FA network trained briefly on digits (reference), deployed for
    inference with Lava-LIF hidden layers; 8 test samples."""
    ds = load_digits(seed=0)
    trained = ReferenceSimulator(spiking_mlp(SIZES, rule="fa", window=T), seed=0)
    trained.train(ds.x_train[:400], np.eye(10)[ds.y_train[:400]], epochs=1, seed=0)
    circuit = spiking_inference(SIZES, window=T)
    return circuit, inference_weights(circuit, trained.weights), ds.x_test[:8], ds.y_test[:8]


def _windows(sim, x):
    """Present the rows of ``x`` one at a time; readouts and monitors over all steps."""
    ro, mon = [], {k: [] for k in (f"{p}.{v}" for p, v in REC)}
    for i in range(len(x)):
        ro.append(sim.present(x[i:i + 1], train=False))
        for k in mon:
            mon[k].append(sim.monitor[k])
    return np.concatenate(ro), {k: np.concatenate(v) for k, v in mon.items()}


def test_lif_models_are_lavas_own():
    """The process models subclass Lava's and override none of its datapath."""
    from lava.proc.lif import models as lm
    from lava.proc.lif.process import LIF, LIFReset

    from neuro_pc.backends.lava.processes import lif_classes

    for reset, fixed, proc, base in [(True, True, LIFReset, lm.PyLifResetModelBitAcc),
                                     (False, True, LIF, lm.PyLifModelBitAcc),
                                     (True, False, LIFReset, lm.PyLifResetModelFloat),
                                     (False, False, LIF, lm.PyLifModelFloat)]:
        P, M = lif_classes("h", 3, reset=reset, fixed=fixed, record=None, monitor=("v",))
        assert issubclass(P, proc) and issubclass(M, base)
        for method in ("subthr_dynamics", "reset_voltage", "scale_threshold", "scale_bias"):
            if hasattr(base, method):
                assert getattr(M, method) is getattr(base, method), method


def test_digits_fixed_pt_equals_quantised_reference_bit_for_bit(digits):
    circuit, weights, x, _ = digits
    lav = compile(circuit, "lava", weights, seed=0, tag="fixed_pt", record=REC, record_all=True)
    assert set(lav.lif) == {"h1", "h2"}
    assert lav.var_frac_bits["h1.v"] == 18 and lav.var_frac_bits["h1.s"] == 12
    q = QuantizedReferenceSimulator(circuit, weights, seed=0, record=REC)
    assert set(q.lif) == {"h1", "h2"}
    ro_q, mon_q = _windows(q, x)
    # two Lava runs: the second starts from the state the first ended in
    ro_l = [lav.run_windows(x[:3], train=False)]
    first = {k: m.copy() for k, m in lav.monitor.items()}
    ro_l.append(lav.run_windows(x[3:], train=False))
    ro_l = np.concatenate(ro_l)
    np.testing.assert_array_equal(ro_l, ro_q)
    for k in mon_q:                       # every step of every window, bit for bit
        got = np.concatenate([first[k], lav.monitor[k]])
        np.testing.assert_array_equal(got, mon_q[k], err_msg=k)
    for k in q.qstate:
        np.testing.assert_array_equal(lav.qstate[k], q.qstate[k], err_msg=k)
    for p in ("h1", "h2", "out"):         # the spike trains are not trivial
        assert mon_q[f"{p}.s"].sum() > 20 and (mon_q[f"{p}.s"] == 0).mean() > 0.3, p
    # fixed point stays close to the float circuit (8-bit weights, 12-bit decays)
    ro_f = np.concatenate([ReferenceSimulator(circuit, weights, seed=0).present(
        x[i:i + 1], train=False) for i in range(len(x))])
    assert np.abs(ro_f - ro_q).max() <= 4 / T
    # staggered restarts make windows independent: a batch gives the same numbers
    q_batch = QuantizedReferenceSimulator(circuit, weights, seed=0)
    np.testing.assert_array_equal(q_batch.present(x, train=False), ro_q)


def test_digits_floating_pt_equals_reference(digits):
    circuit, weights, x, _ = digits
    lav = compile(circuit, "lava", weights, seed=0, tag="floating_pt", record=REC,
                  record_all=True)
    assert set(lav.lif) == {"h1", "h2"}
    ro_r, mon_r = _windows(ReferenceSimulator(circuit, weights, seed=0, record=REC), x)
    ro_l = lav.run_windows(x, train=False)
    np.testing.assert_allclose(ro_l, ro_r, rtol=0, atol=1e-12)
    for k in mon_r:
        if k.endswith(".s"):
            np.testing.assert_array_equal(lav.monitor[k], mon_r[k], err_msg=k)
        else:
            np.testing.assert_allclose(lav.monitor[k], mon_r[k], rtol=1e-12, atol=1e-12,
                                       err_msg=k)


VARIANTS = {
    # leaky, current-based, a bias; every layer restarts at step 0 and adds
    # the previous window's last spikes (windows carry over)
    "cuba_bias": dict(lif=LavaLIF(v_decay=0.9, i_decay=0.5, bias=0.05), stagger=False),
    # plain LIF: never restarts
    "no_restart": dict(lif=LavaLIF(v_decay=0.8, reset_step=None)),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_lif_variants_both_tags(name):
    c = spiking_inference([8, 6, 5, 4], window=12, init_scale=3.0, **VARIANTS[name])
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (4, 8))
    q = QuantizedReferenceSimulator(c, seed=0, record=REC)
    assert set(q.lif) == {"h1", "h2"}
    ro_q, mon_q = _windows(q, x)
    lav = compile(c, "lava", seed=0, tag="fixed_pt", record=REC, record_all=True)
    np.testing.assert_array_equal(lav.run_windows(x, train=False), ro_q)
    for k in mon_q:
        np.testing.assert_array_equal(lav.monitor[k], mon_q[k], err_msg=k)
    assert mon_q["h2.s"].sum() > 0
    ref = ReferenceSimulator(c, seed=0, record=REC)
    ro_r, mon_r = _windows(ref, x)
    lav = compile(c, "lava", seed=0, tag="floating_pt", record=REC, record_all=True)
    np.testing.assert_allclose(lav.run_windows(x, train=False), ro_r, rtol=0, atol=1e-12)
    for k in mon_r:
        np.testing.assert_allclose(lav.monitor[k], mon_r[k], rtol=1e-12, atol=1e-12,
                                   err_msg=k)


def test_without_lava_lif_every_population_runs_its_statements():
    """lava_lif=False: the project's own processes in the project's arithmetic,
    equal to the quantised reference with lava_lif=False (and not to Lava's LIF)."""
    c = spiking_inference([8, 6, 5, 4], window=12, init_scale=3.0,
                          lif=LavaLIF(v_decay=0.9, i_decay=0.5))
    x = np.random.default_rng(2).uniform(0, 1, (2, 8))
    q = QuantizedReferenceSimulator(c, seed=0, lava_lif=False)
    lav = compile(c, "lava", seed=0, tag="fixed_pt", lava_lif=False)
    assert lav.lif == {} and q.lif == {}
    np.testing.assert_array_equal(lav.readouts(x), q.present(x, train=False))
    for k in q.qstate:       # windows are independent: the batch's last row is Lava's end
        np.testing.assert_array_equal(lav.qstate[k], q.qstate[k][-1:], err_msg=k)


def test_plastic_projection_into_a_lava_lif_floating_pt():
    """A rule reading a Lava LIF's spikes (post.s) and a PlasticDense feeding its
    a_in: floating_pt training equals the reference."""
    from neuro_pc.ir import Rule

    c = spiking_inference([8, 6, 5, 4], window=12, init_scale=3.0)
    rule = Rule("dw = eta * post.s * pre.s - eta * w", {"eta": 0.05})
    c = c.replace(projections=tuple(p if p.name != "W1" else dataclasses.replace(p, rule=rule)
                                    for p in c.projections))
    x = np.random.default_rng(3).uniform(0, 1, (5, 8))
    ref = ReferenceSimulator(c, seed=0)
    lav = compile(c, "lava", seed=0, tag="floating_pt")
    assert set(lav.lif) == {"h1", "h2"}
    ro_r = np.concatenate([ref.present(x[i:i + 1], train=True) for i in range(len(x))])
    ro_l = lav.run_windows(x, train=True)
    np.testing.assert_allclose(ro_l, ro_r, rtol=0, atol=1e-12)
    assert np.abs(ref.weights["W1"] - c.init_weights(0)["W1"]).max() > 1e-3
    for k in ref.weights:
        np.testing.assert_allclose(lav.weights[k], ref.weights[k], rtol=1e-12, atol=1e-12)
