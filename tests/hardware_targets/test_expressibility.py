"""Learning-engine expressibility: every shipped rule's verdict, each reason,
hand-computed scaling constants, and the rule strings Lava accepts."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hardware_targets.expressibility import (expressibility_report, format_expressibility,
                                             nearest_scaling_constant)
from neuro_pc.ir import Rule
from neuro_pc.models import mlp, shipped_circuits

FA_STRING = "u0 * (y2 - 64) * x1"


def _by_name(circuit, **kw):
    return {r.projection: r for r in expressibility_report(circuit, **kw)}


def _with_rule(circuit, proj, text, params=None, **kw):
    params = {"eta": 0.01} if params is None else params
    projs = tuple(dataclasses.replace(p, rule=Rule(text, params, **kw)) if p.name == proj else p
                  for p in circuit.projections)
    return circuit.replace(projections=projs)


# ---------------------------------------------------------------- shipped rules
SHIPPED = shipped_circuits()
EXPECTED = {  # rule family -> projection -> expressible on Loihi 2
    "fa": {"W1": True, "b1": True, "W2": True, "b2": True},
    "dfa": {"W1": True, "b1": True, "W2": True, "b2": True},
    "pc": {"W1": True, "b1": True, "W2": True, "b2": True, "B1": True},
    # hidden rules read the transported W2ᵀ; the output layer's rule does not
    "bp": {"W1": False, "b1": False, "W2": True, "b2": True},
    "ss": {"W1": False, "b1": False, "W2": True, "b2": True},
    # the decay -lam*w with lam = 1e-3 is below the smallest scaling constant 2^-7
    "kp": {"W1": False, "b1": False, "W2": False, "b2": False, "B1": False},
}


def test_every_shipped_rule_has_its_verdict():
    assert set(SHIPPED) == set(EXPECTED)
    for family, circuit in SHIPPED.items():
        got = {n: r.expressible for n, r in _by_name(circuit).items()}
        assert got == EXPECTED[family], family


@pytest.mark.parametrize("family", ["fa", "dfa"])
def test_fa_dfa_three_factor_error_in_post_trace(family):
    for r in _by_name(SHIPPED[family]).values():
        assert r.expressible and r.kind == "three-factor"
        assert r.rule_class == "Loihi3FLearningRule"
        assert r.traces == {"pre.r": "x1", "post.delta": "y2"}
        assert r.loihi_rule.endswith(FA_STRING)
        assert r.t_epoch == SHIPPED[family].schedule.window
        assert not r.reasons


def test_fa_conditions_name_the_signed_pre_activity():
    r = _by_name(SHIPPED["fa"])
    # W2's pre is h1.r = tanh(a): signed, but x1 is unsigned -> a condition
    assert r["W2"].verdict == "yes, if"
    assert "tanh(a)" in r["W2"].conditions[0] and "unsigned" in r["W2"].conditions[0]
    # W1's pre is the data stream: must be >= 0
    assert "data stream 'x'" in r["W1"].conditions[0]
    # the bias unit is the constant 1: no condition
    assert r["b1"].verdict == "yes" and not r["b1"].conditions


def test_bp_reason_is_weight_transport():
    r = _by_name(SHIPPED["bp"])
    assert r["W1"].reasons[0].startswith("weight transport: projection 'B1' carries the "
                                         "weights of 'W2' transposed")
    assert r["W1"].loihi_rule is None


def test_ss_reason_is_sign_transport():
    r = _by_name(SHIPPED["ss"])["W1"]
    assert r.reasons[0].startswith("sign transport: projection 'B1' carries the sign of 'W2'")


def test_kp_structure_maps_but_decay_constant_is_out_of_range():
    r = _by_name(SHIPPED["kp"])
    b = r["B1"]
    # B's rule -eta * post.r * pre.delta - lam * w: pre.delta is what B carries -> x1,
    # post.r -> y2, the decay is the synaptic factor w
    assert b.traces == {"pre.delta": "x1", "post.r": "y2"}
    assert "u0 * w" in b.loihi_rule and FA_STRING in b.loihi_rule
    assert len(b.reasons) == 1 and b.reasons[0].startswith("constant out of range: term '-lam * w'")
    # the w factor is counted in register LSBs, so S = -lam exactly
    decay = [c for c in b.constants if c.term == "-lam * w"][0]
    assert decay.value == pytest.approx(-1e-3) and decay.mantissa is None


def test_kp_with_a_larger_decay_is_expressible():
    c = mlp([8, 6, 4], rule="kp", lam=2.0 ** -6)
    for r in expressibility_report(c):
        assert r.expressible, r.reasons
        decay = [k for k in r.constants if k.term == "-lam * w"][0]
        # S = -lam = -2^-6 = -2 * 2^-7 exactly (ties go to the smaller exponent)
        assert (decay.mantissa, decay.exp, decay.rel_error) == (-2, -7, 0.0)


def test_pc_feedback_rule():
    b = _by_name(SHIPPED["pc"])["B1"]
    assert b.traces == {"pre.eps": "x1", "post.r": "y2"}
    assert "(a difference)" in b.conditions[0]
    tied = _by_name(mlp([8, 6, 4], rule="pc", feedback="tied"))
    assert not tied["W1"].expressible and "weight transport" in tied["W1"].reasons[0]


# ---------------------------------------------------------------- each reason
def test_population_level_normalisation():
    r = _by_name(mlp([8, 6, 4], rule="fa", norm="layernorm"))["W1"]
    assert not r.expressible
    # the layer norm is written out with popmean() so its exact derivative is local
    assert r.reasons[0].startswith("population-level: the rule reads population 'h1' through "
                                   "population-level popmean()")


def test_muon_and_unit_columns_transforms():
    r = _by_name(mlp([8, 6, 6, 4], rule="fa", muon=True))
    assert "population-level transform 'muon'" in r["W1"].reasons[0]
    assert r["W3"].expressible  # the output layer keeps the plain rule
    c = _with_rule(SHIPPED["fa"], "W2", "dw = -eta * post.delta * pre.r",
                   transforms=("unit_columns",))
    assert "'unit_columns'" in _by_name(c)["W2"].reasons[0]


def test_unit_rows_transform_is_not_on_chip():
    c = _with_rule(SHIPPED["fa"], "W2", "dw = -eta * post.delta * pre.r",
                   transforms=("unit_rows",))
    r = _by_name(c)["W2"]
    assert not r.expressible
    assert r.reasons[0].startswith("population-level transform 'unit_rows'")
    assert "all synapses into one postsynaptic neuron" in r.reasons[0]


def test_nonlinear_factor_is_not_a_trace():
    c = _with_rule(SHIPPED["fa"], "W2", "dw = eta * tanh(post.a) * pre.r")
    r = _by_name(c)["W2"]
    assert not r.expressible and r.loihi_rule is None
    assert "post factor post.(tanh(a)) is the nonlinear function tanh(a), not a trace" in r.reasons[0]


def test_division_is_not_a_trace():
    c = _with_rule(SHIPPED["fa"], "W2", "dw = eta * post.delta / post.a * pre.r")
    assert "divides by a" in _by_name(c)["W2"].reasons[0]


def test_products_of_traces_and_powers_are_fine():
    c = _with_rule(SHIPPED["fa"], "W2", "dw = eta * post.delta * post.r**2 * pre.r")
    r = _by_name(c)["W2"]
    assert r.expressible, r.reasons
    assert r.traces == {"pre.r": "x1", "post.delta": "y2", "post.r": "y3"}
    assert "(y2 - 64) * (y3 - 64) * (y3 - 64) * x1" in r.loihi_rule


def test_pre_factor_must_be_the_carried_variable():
    c = _with_rule(SHIPPED["fa"], "W2", "dw = eta * post.delta * pre.a")
    r = _by_name(c)["W2"]
    assert r.reasons == ("the pre factor pre.a is not the variable this projection carries "
                         "(pre.r) nor an exponential trace of its spikes ('a = ff' is not of "
                         "the form a = a * decay + impulse * s); the pre traces x1/x2 are "
                         "filled only from this projection's own spikes",)


def test_too_many_post_factors():
    # h1 has a, r, delta and the port fb: four distinct post factors, three post traces
    c = _with_rule(SHIPPED["dfa"], "W1",
                   "dw = eta * post.a * pre.r + eta * post.r * pre.r + eta * post.delta * pre.r"
                   " + eta * post.fb * pre.r")
    r = _by_name(c)["W1"]
    assert any(x.startswith("too many distinct post factors: 4 (post.a, post.r, post.delta, "
                            "post.fb)") or x.startswith("too many distinct post factors: 4")
               for x in r.reasons)


def test_run_time_scalar_in_coefficient():
    c = _with_rule(SHIPPED["fa"], "W2", "dw = -eta * train * post.delta * pre.r")
    assert "reads train" in _by_name(c)["W2"].reasons[0]


def test_sign_of_w():
    c = _with_rule(SHIPPED["fa"], "W2", "dw = -eta * sign(w)", {"eta": 0.05})
    r = _by_name(c)["W2"]
    assert r.expressible and r.loihi_rule.endswith("u0 * sgn(w)")
    assert r.kind == "synapse-local" and r.rule_class == "Loihi2FLearningRule"


# ---------------------------------------------------------------- constants
def test_nearest_scaling_constant_hand_values():
    # -0.02 = -2.56 * 2^-7: the nearest is -3 * 2^-7 (error 0.0034; -1 * 2^-6 errs 0.0044)
    assert nearest_scaling_constant(-0.02) == (-3, -7)
    # 2^-8 is halfway between 0 and 2^-7: rounds to 0 -> out of range; just above it does not
    assert nearest_scaling_constant(2.0 ** -8) is None
    assert nearest_scaling_constant(0.004) == (1, -7)
    assert nearest_scaling_constant(1e-3) is None
    # the largest: 7 * 2^8 = 1792 and -8 * 2^8 = -2048; beyond is out of range
    assert nearest_scaling_constant(1792.0) == (7, 8)
    assert nearest_scaling_constant(-2048.0) == (-8, 8)
    assert nearest_scaling_constant(1800.0) is None
    assert nearest_scaling_constant(0.0) is None


def test_fa_learning_rate_hand_computed():
    c = mlp([8, 6, 4], rule="fa", eta=2.0 ** -4)
    weights = {n: np.full(w.shape, 0.9) for n, w in c.init_weights(0).items()}
    r = _by_name(c, weights=weights)["W1"]
    # W = 0.9: 0.9 / 2^-7 = 115 fits 8-bit mixed, 0.9 / 2^-8 does not -> exp -7, and the
    # register holds mantissa << 1, so one register step is 2^-8 weight units.
    # S = eta * 2^-6 (y2 LSB) * 2^-6 (x1 LSB) * 2^3 (Lava shifts the 7+7+4 = 18-bit product
    #     right by 3) / 2^-8 = 2^-4 * 2^-1 = 2^-5 = -4 * 2^-7 (negative: the rule is -eta)
    k = r.constants[0]
    assert k.value == pytest.approx(-(2.0 ** -5))
    assert (k.mantissa, k.exp, k.rel_error) == (-4, -7, 0.0)
    assert r.loihi_rule == "-4*2^-7 * " + FA_STRING


def test_trace_frac_bits_moves_the_constant():
    c = mlp([8, 6, 4], rule="fa", eta=2.0 ** -4)
    weights = {n: np.full(w.shape, 0.9) for n, w in c.init_weights(0).items()}
    # one fractional bit fewer on each trace -> S four times larger: 2^-3
    k = _by_name(c, weights=weights, trace_frac_bits=5)["W1"].constants[0]
    assert k.value == pytest.approx(-(2.0 ** -3))


# ---------------------------------------------------------------- cpu, format, Lava
def test_cpu_runs_everything():
    for circuit in SHIPPED.values():
        for r in expressibility_report(circuit, "cpu"):
            assert r.expressible and r.verdict == "yes" and r.kind == "float"


def test_format_table():
    text = format_expressibility(expressibility_report(SHIPPED["bp"]))
    assert text.splitlines()[0].split()[:3] == ["projection", "on", "chip"]
    assert "no: weight transport" in text and "Loihi3FLearningRule(dw='" in text


def test_rule_strings_parse_in_lava():
    lr = pytest.importorskip("lava.magma.core.learning.learning_rule")
    c = _with_rule(SHIPPED["kp"], "W2", "dw = -eta * post.delta * post.r * pre.r - lam * w"
                   " + eta * sign(w)", {"eta": 0.01, "lam": 2.0 ** -6})
    checked = 0
    for circuit in [*SHIPPED.values(), c]:
        for r in expressibility_report(circuit):
            if r.loihi_rule is None:
                continue
            rule = lr.Loihi3FLearningRule(dw=r.loihi_rule, t_epoch=r.t_epoch)
            products = rule.dw.products
            assert len(products) == len(r.constants)
            for prod, k in zip(products, r.constants):
                if k.mantissa is None:
                    continue
                assert prod.dependency == "u"
                # Lava stores s_exp + 7
                assert (prod.s_mantissa, prod.s_exp - 7) == (k.mantissa, k.exp)
            checked += 1
    assert checked > 10


# ---------------------------------------------------------------- spiking rules
from hardware_targets.expressibility import spike_trace  # noqa: E402
from neuro_pc.models.spiking import LIF, Trace, spiking_mlp  # noqa: E402

#: the two-rail spiking rule: en, ep are relu(...) >= 0, so they sit in y2, y3 unoffset
SPIKING_STRING = "u0 * y2 * x1 - {m}*2^{e} * u0 * y3 * x1"


def _spiking(rule="fa", trace=None, **kw):
    return spiking_mlp([16, 12, 10], rule=rule, window=32, trace=trace, **kw)


@pytest.mark.parametrize("rule", ["fa", "dfa"])
def test_spiking_rules_expressible_with_the_window_reset_condition(rule):
    c = _spiking(rule)
    got = _by_name(c)
    assert set(got) == {"W1", "b1", "W2", "b2"}
    for name in ("W1", "W2"):
        r = got[name]
        assert r.expressible and r.verdict == "yes, if", r.reasons
        assert r.kind == "three-factor" and r.rule_class == "Loihi3FLearningRule"
        assert r.traces == {"pre.tr": "x1", "post.en": "y2", "post.ep": "y3"}
        # the default rate trace: no decay (Lava tau 0 = no decay), impulse 1/T = 1/32 of
        # a value, i.e. 2^6 / 32 = 2 trace units (LSB 2^-6)
        assert r.trace_params == {"x1_tau": 0, "x1_impulse": 2.0}
        m, e = r.constants[0].mantissa, r.constants[0].exp
        assert r.loihi_rule == f"{m}*2^{e} * " + SPIKING_STRING.format(m=m, e=e)
        assert r.lava_rule.startswith("Loihi3FLearningRule(dw='") and \
            r.lava_rule.endswith("', x1_impulse=2, x1_tau=0, t_epoch=32)")
        # exactly one caveat: the reference resets the trace at each window start, the chip
        # cannot (and with decay 1 a silent gap does not clear it)
        assert len(r.conditions) == 1
        cond = r.conditions[0]
        assert "restarts at 0 at every window start" in cond
        assert "Loihi never resets x1" in cond and "Trace(window_reset=False)" in cond
        assert "never forgotten" in cond and "saturates at 127" in cond
    # the bias unit's trace is a constant (no update): folded into S, no pre trace
    for name in ("b1", "b2"):
        r = got[name]
        assert r.verdict == "yes" and r.kind == "two-factor"
        assert r.traces["pre.tr"] == "constant 1 (in S)"
        assert "x1" not in r.loihi_rule and r.trace_params == {}


def test_spiking_rules_check_cli_output():
    from hardware_targets.check import check_report, format_check

    c = _spiking()
    text = format_check(check_report(c, "loihi2"))
    assert "pre.tr -> x1" in text and "x1_impulse=2, x1_tau=0, t_epoch=32" in text
    assert "summary: 4/4 rules on chip" in text


def test_chip_trace_without_window_reset_has_no_reset_caveat():
    # decay exp(-1/8): x1_tau = 8 exactly; impulse 1/8 = 8 trace units exactly; the peak
    # impulse / (1 - decay) = 1.06 -> 68 units <= 127: no condition at all
    tr = Trace(decay=float(np.exp(-1 / 8)), impulse=0.125, window_reset=False)
    for name, r in _by_name(_spiking(trace=tr)).items():
        assert r.verdict == "yes", (name, r.conditions)
        if name.startswith("W"):
            assert r.trace_params == {"x1_tau": 8, "x1_impulse": 8.0}


def test_chip_trace_conditions_name_tau_rounding_and_saturation():
    # decay 0.9: tau = 9.49 steps, Lava holds x1_tau = 9; never reset and no decay: saturates
    r = _by_name(_spiking(trace=Trace(decay=0.9, impulse=0.1, window_reset=False)))["W1"]
    assert r.trace_params["x1_tau"] == 9
    assert any("x1_tau = 9 decays by exp(-1/9) = 0.8948" in c for c in r.conditions)
    assert not any("restarts at 0" in c for c in r.conditions)
    r = _by_name(_spiking(trace=Trace(decay=1.0, impulse=1 / 32, window_reset=False)))["W2"]
    assert any("reaches up to inf" in c and "saturates at 127" in c for c in r.conditions)


def test_spike_trace_matches_the_statement_and_the_declaration():
    c = _spiking(lif=LIF(v_decay=0.9, reset="zero", refractory=1),
                 trace=Trace(decay=0.8, impulse=0.25))
    tr, why = spike_trace(c, "h1", "tr")
    assert why == "" and tr.declared
    assert (tr.spike, tr.decay, tr.impulse, tr.window_reset) == ("s", 0.8, 0.25, True)
    # the membrane is not a trace of the spikes
    assert spike_trace(c, "h1", "v")[0] is None
    # a metadata declaration that disagrees with the update is refused
    meta = {**c.metadata, "spike_traces": {**c.metadata["spike_traces"],
                                           "h1": {"tr": {"spike": "s", "decay": 0.5,
                                                         "impulse": 0.25,
                                                         "window_reset": True}}}}
    bad = c.replace(metadata=meta)
    tr, why = spike_trace(bad, "h1", "tr")
    assert tr is None and "declares h1.tr" in why
    assert not _by_name(bad)["W2"].expressible


def test_spiking_non_trace_pre_factor_still_rejected():
    c = _spiking()
    # the membrane potential v is not a trace of the carried spikes s
    r = _by_name(_with_rule(c, "W2", "dw = eta * post.en * pre.v"))["W2"]
    assert not r.expressible and r.verdict == "no"
    assert len(r.reasons) == 1
    assert r.reasons[0].startswith("the pre factor pre.v is not the variable this projection "
                                   "carries (pre.s) nor an exponential trace of its spikes")
    # delta = fb * step(tr): computed from the trace, but not a trace itself
    r = _by_name(_with_rule(c, "W2", "dw = eta * post.en * pre.delta"))["W2"]
    assert not r.expressible and "pre.delta" in r.reasons[0]


def test_spiking_carried_spike_and_its_trace_cannot_share_x1():
    c = _with_rule(_spiking(), "W2", "dw = eta * post.en * pre.tr + eta * post.ep * pre.s")
    r = _by_name(c)["W2"]
    assert not r.expressible and any("cannot share x1" in x for x in r.reasons)


def test_spiking_rule_strings_build_in_lava():
    lr = pytest.importorskip("lava.magma.core.learning.learning_rule")
    for trace in (None, Trace(decay=0.9, impulse=0.1, window_reset=False)):
        for r in expressibility_report(_spiking(trace=trace)):
            rule = lr.Loihi3FLearningRule(dw=r.loihi_rule, t_epoch=r.t_epoch, **r.trace_params)
            assert rule.x1_tau == r.trace_params.get("x1_tau", 0)
            assert rule.x1_impulse == r.trace_params.get("x1_impulse", 0)
            assert len(rule.dw.products) == len(r.constants)
