"""Which populations are Lava's own LIF (hardware_targets.neurons), the
bit-accurate parameters they get, the quantised reference's LIF datapath
against Lava's own model code, and what ``neuro-pc check`` says."""
import importlib.util

import numpy as np
import pytest

from hardware_targets import get_target
from hardware_targets.check import check_report, format_check
from hardware_targets.neurons import (CUSTOM, LavaLifRangeError, lava_lif, lava_lif_statements,
                                      lif_populations, neuron_report)
from neuro_pc.backends.reference.quantized import QuantizedScopeError, lif_step
from neuro_pc.ir import Circuit, Population, Projection, Rule, Schedule
from neuro_pc.models.spiking import (LIF, LavaLIF, shipped_spiking_circuits, spiking_inference,
                                     spiking_mlp)

LIFS = [LavaLIF(), LavaLIF(v_decay=0.9), LavaLIF(v_decay=0.95, i_decay=0.5, bias=0.01),
        LavaLIF(reset_step=None), LavaLIF(i_decay=0.8, reset_step=3, thr=0.5)]


def _one(neuron, window=8, rule=None, variable=""):
    """input spikes -> one population ``h`` of ``neuron`` -> a readout population."""
    pops = (Population("x", 3, ("r", "s"), ("s = step(r - 0.5)",), output="s",
                       streams={"r": "x"}),
            Population("h", 4, neuron.variables, neuron.statements("ff"), ("ff",), output="s",
                       params=neuron.params, model="lif"),
            Population("o", 2, ("a",), ("a = ff",), ("ff",), output="a"))
    projs = (Projection("W", "x", "h", "ff", rule=rule),
             Projection("V", "h", "o", "ff", variable=variable))
    return Circuit("one", pops, projs, Schedule(window=window), streams={"x": 3},
                   readout=("o", "a"))


@pytest.mark.parametrize("neuron", LIFS, ids=str)
def test_the_builder_and_the_recogniser_write_the_same_form(neuron):
    """LavaLIF.statements (the model) and lava_lif_statements (the recogniser's
    definition of Lava's LIF) are two writings of one form: they must agree."""
    assert neuron.statements("ff") == lava_lif_statements("ff", neuron.i_decay is not None,
                                                          neuron.reset_step)
    m, why = lava_lif(_one(neuron), "h", frac_bits=12)
    assert why == "" and m is not None
    assert m.dv == pytest.approx(1 - neuron.v_decay) and m.thr == neuron.thr
    assert m.bias == neuron.bias and m.reset_step == neuron.reset_step
    assert m.current == (neuron.i_decay is not None)
    if neuron.reset_step is None:
        assert m.process == "LIF" and m.label == "Lava LIF (bit-accurate)"
    else:   # Lava's time_step counts from 1: window step k is (k + 1) % T
        assert (m.reset_interval, m.reset_offset) == (8, (neuron.reset_step + 1) % 8)
        assert m.label.startswith("Lava LIFReset(reset_interval=8, reset_offset=")


def test_numbers_instead_of_parameters_are_recognised():
    pop = Population("h", 4, ("v", "s"), ("v = where(tw == 0, 0, v * (1 - 0.25)) + ff + 0",
                                          "s = step(v - 2)", "v = where(s > 0, 0, v)"),
                     ("ff",), output="s")
    c = _one(LavaLIF())
    c = c.replace(populations=(c.populations[0], pop, c.populations[2]))
    m, why = lava_lif(c, "h")
    assert why == "" and (m.dv, m.thr, m.bias, m.current) == (0.25, 2.0, 0.0, False)


def test_fixed_point_parameters():
    """The documented mapping at F = 12: u, v with 18 fractional bits, vth =
    thr·2**12, du = rint(du·4096) − 1, dv = rint(dv·4096), bias = mant·2**exp
    = rint(bias·2**18)."""
    m, _ = lava_lif(_one(LavaLIF(v_decay=0.9, i_decay=0.5, bias=0.01)), "h")
    fx = m.fixed(12)
    assert (fx.du, fx.dv, fx.vth, fx.bias_mant, fx.bias_exp) == (2047, 410, 4096, 2621, 0)
    assert (fx.input_frac_bits, fx.state_frac_bits) == (12, 18)
    assert fx.effective["v_decay"] == 3686 / 4096 and fx.effective["u_decay"] == 0.5
    assert fx.effective["v_max"] == pytest.approx(32, rel=1e-6)
    assert any(n.startswith("v_decay 0.89990234") for n in fx.notes)
    m, _ = lava_lif(_one(LavaLIF(bias=0.5)), "h")
    fx = m.fixed(12)        # 0.5 * 2**18 = 131072 = 2048 * 2**6 (13-bit mantissa)
    assert (fx.du, fx.dv, fx.bias_mant, fx.bias_exp, fx.bias) == (4095, 0, 2048, 6, 131072)
    assert m.fixed(8).vth == 256 and m.fixed(8).state_frac_bits == 14


@pytest.mark.parametrize("neuron,what", [
    (LavaLIF(thr=40.0), "vth"), (LavaLIF(v_decay=0.0), "voltage decay"),
    (LavaLIF(i_decay=1.0), "never decays"), (LavaLIF(bias=3.0), "bias")])
def test_numbers_beyond_lavas_widths_are_custom_in_fixed_point(neuron, what):
    c = _one(neuron)
    m, why = lava_lif(c, "h")
    assert m is not None                      # floating_pt: Lava's float LIF holds them
    with pytest.raises(LavaLifRangeError, match=what):
        m.fixed(12)
    m, why = lava_lif(c, "h", frac_bits=12)
    assert m is None and "outside its bit-accurate model" in why and what in why
    assert lif_populations(c, 12) == {} and set(lif_populations(c)) == {"h"}


def test_the_projects_own_lif_is_custom_and_says_why():
    for lif, hint in [(LIF(reset="zero"), "ignores its input at the window's first step"),
                      (LIF(), "resets by subtraction"),
                      (LIF(refractory=2, reset="zero"), "LIFRefractory")]:
        m, why = lava_lif(_one(lif), "h")
        assert m is None and hint in why, why


def test_only_spikes_may_leave_a_lava_lif():
    m, why = lava_lif(_one(LavaLIF(), variable="v"), "h")
    assert m is None and "projection V reads v" in why
    m, why = lava_lif(_one(LavaLIF(), rule=Rule("dw = 0.1 * post.v * pre.s")), "h")
    assert m is None and "the rule of W reads v" in why
    m, why = lava_lif(_one(LavaLIF(), rule=Rule("dw = 0.1 * post.s * pre.s")), "h")
    assert m is not None


def test_the_staggered_restarts_are_read_from_the_statements():
    """spiking_inference's LavaLIF layers restart at window step l (its stagger):
    the recognition reads that from each population's update, nothing else."""
    c = spiking_inference([6, 5, 4, 3], window=10)
    m1, m2 = lava_lif(c, "h1")[0], lava_lif(c, "h2")[0]
    assert (m1.reset_step, m2.reset_step) == (1, 2) and m1.thr == 1.0


def test_restart_beyond_the_window_is_custom():
    m, why = lava_lif(_one(LavaLIF(reset_step=8), window=8), "h")
    assert m is None and "never" in why


def test_shipped_circuits_are_custom_and_the_inference_circuit_is_not():
    for name, c in shipped_spiking_circuits().items():
        rows = neuron_report(c, get_target("loihi2"))
        assert all(r["model"] == CUSTOM and r["reason"] for r in rows), name
    c = spiking_inference([6, 5, 4, 3], window=10)
    rows = {r["population"]: r for r in neuron_report(c, get_target("loihi2"))}
    assert rows["h1"]["model"] == ("Lava LIFReset(reset_interval=10, reset_offset=2) "
                                   "(bit-accurate)")
    assert rows["h2"]["lava"]["reset_offset"] == 3
    assert rows["h1"]["lava"]["fixed"]["vth"] == 4096
    assert rows["out"]["model"] == CUSTOM and "Lava's LIF plus statements for tr" in \
        rows["out"]["reason"]
    assert "input encoder" in rows["x"]["reason"]
    assert "constant source" in rows["bias"]["reason"]
    assert neuron_report(c, get_target("cpu")) == []


def test_check_reports_the_neuron_model_of_every_population():
    c = spiking_inference([6, 5, 4, 3], window=10)
    report = check_report(c, "loihi2")
    assert [r["population"] for r in report["neurons"]] == ["x", "bias", "h1", "h2", "out"]
    text = format_check(report)
    assert "-- neuron models on loihi2" in text
    assert "2/5 populations on Lava's own LIF models; 3 custom" in text
    (h1,) = [line for line in text.splitlines() if line.startswith("h1 ") and "Lava" in line]
    assert "Lava LIFReset(reset_interval=10, reset_offset=2) (bit-accurate)" in h1
    assert "du=4095 dv=0 vth=4096" in h1
    assert CUSTOM in text
    learning = check_report(spiking_mlp([6, 5, 3], window=10), "loihi2")
    assert all(r["model"] == CUSTOM for r in learning["neurons"])
    assert "neuron models" not in format_check(check_report(c, "cpu"))


# --------------------------------------------------------------------------- datapath
def _lava_model(fx):
    """Lava's own bit-accurate LIF model object (no process, no runtime): its
    methods are the arithmetic the Lava backend runs."""
    from lava.proc.lif.models import PyLifModelBitAcc

    m = PyLifModelBitAcc.__new__(PyLifModelBitAcc)
    PyLifModelBitAcc.__init__(m, {})
    m.du, m.dv, m.vth = fx.du, fx.dv, fx.vth
    return m


@pytest.mark.skipif(importlib.util.find_spec("lava") is None, reason="needs lava-nc")
@pytest.mark.parametrize("neuron", [LavaLIF(), LavaLIF(v_decay=0.9, i_decay=0.5, bias=-0.3),
                                    LavaLIF(v_decay=0.7, i_decay=0.97, bias=1.9, thr=8.0),
                                    LavaLIF(v_decay=1 / 4096, i_decay=1 / 4096, thr=0.0)],
                         ids=str)
def test_quantised_reference_lif_equals_lavas_bit_accurate_model(neuron):
    """lif_step (written from the documented arithmetic) against the methods of
    Lava's PyLifModelBitAcc, step by step, on random and extreme inputs: large
    currents that wrap u, voltages that saturate, negative values (decays round
    toward zero)."""
    m, _ = lava_lif(_one(neuron), "h")
    fx = m.fixed(12)
    lava = _lava_model(fx)
    n = 64
    rng = np.random.default_rng(0)
    half = 1 << 23
    u = rng.integers(-half + 1, half, n)
    v = rng.integers(-half + 1, half, n)
    u[:4] = [half, -half + 1, half - 1, 0]
    v[:4] = [-(half - 1), half - 1, 0, 1]
    lava.u = u.astype(np.int32)
    lava.v = v.astype(np.int32)
    lava.bias_mant = np.full(n, fx.bias_mant, dtype=np.int16)
    lava.bias_exp = np.full(n, fx.bias_exp, dtype=np.int16)
    hits = {"wrap": 0, "sat": 0, "spike": 0}
    for step in range(200):
        scale = [1 << 6, 1 << 12, 1 << 17, 1 << 18][step % 4]
        a = rng.integers(-scale, scale, n)
        try:
            u_q, v_q, s_q = lif_step(u, v, a, fx, restart=False)
        except QuantizedScopeError:
            a = a // 4
            u_q, v_q, s_q = lif_step(u, v, a, fx, restart=False)
        lava.scale_bias()
        lava.scale_threshold()
        x = (np.sign(u * (4095 - fx.du)) * (np.abs(u * (4095 - fx.du)) >> 12)) + (a << 6)
        hits["wrap"] += int(np.any(np.abs(x) > half))
        lava.subthr_dynamics(activation_in=a.astype(np.int32))
        hits["sat"] += int(np.any(np.abs(lava.v) == half - 1))
        s = lava.spiking_activation()
        lava.reset_voltage(s)
        hits["spike"] += int(s.sum())
        np.testing.assert_array_equal(lava.u, u_q, err_msg=f"u at step {step}")
        np.testing.assert_array_equal(lava.v, v_q, err_msg=f"v at step {step}")
        np.testing.assert_array_equal(s, s_q)
        u, v = u_q, v_q
    assert hits["wrap"] and hits["spike"], hits
    assert hits["sat"] or neuron.v_decay < 0.5, hits     # a leak this fast never saturates


def test_restart_zeroes_u_and_v_and_then_adds_the_input():
    m, _ = lava_lif(_one(LavaLIF(i_decay=0.5)), "h")
    fx = m.fixed(12)
    u, v, s = lif_step(np.array([1000]), np.array([5000]), np.array([7]), fx, restart=True)
    assert (u[0], v[0], s[0]) == (7 << 6, 7 << 6, False)
    with pytest.raises(QuantizedScopeError, match="too large"):
        lif_step(np.array([0]), np.array([0]), np.array([1 << 19]), fx, restart=False)
