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

#: FA's -eta * post.delta * pre.r, compiled: the signed error on two rails (y2 = relu(delta),
#: y3 = relu(-delta)), the pre value in x1, every product gated by u0 (once per epoch)
FA_STRING = "u0 * x1 * y2 + {m}*2^{e} * u0 * x1 * y3"


def _by_name(circuit, **kw):
    return {r.projection: r for r in expressibility_report(circuit, **kw)}


def _with_rule(circuit, proj, text, params=None, **kw):
    params = {"eta": 0.01} if params is None else params
    projs = tuple(dataclasses.replace(p, rule=Rule(text, params, **kw)) if p.name == proj else p
                  for p in circuit.projections)
    return circuit.replace(projections=projs)


# ---------------------------------------------------------------- shipped rules
SHIPPED = shipped_circuits()
EXPECTED = {  # rule family -> projection -> expressible on Loihi 2 (the shipped tanh MLPs)
    # W2's pre activity h1.r = tanh(a) is signed: x1 is unsigned and the payload is the
    # forward input, so no coding carries it
    "fa": {"W1": True, "b1": True, "W2": False, "b2": True},
    "dfa": {"W1": True, "b1": True, "W2": False, "b2": True},
    "pc": {"W1": True, "b1": True, "W2": False, "b2": True, "B1": False},
    # hidden rules read the transported W2ᵀ; W2's own weights are read by the tied B1
    "bp": {"W1": False, "b1": False, "W2": False, "b2": True},
    "ss": {"W1": False, "b1": False, "W2": False, "b2": True},
    # the decay -lam*w with lam = 1e-3 is below the smallest scaling constant 2^-7
    "kp": {"W1": False, "b1": False, "W2": False, "b2": False, "B1": False},
}


def test_every_shipped_rule_has_its_verdict():
    assert set(SHIPPED) == set(EXPECTED)
    for family, circuit in SHIPPED.items():
        got = {n: r.expressible for n, r in _by_name(circuit).items()}
        assert got == EXPECTED[family], family


@pytest.mark.parametrize("family", ["fa", "dfa"])
def test_fa_dfa_three_factor_error_on_two_rails(family):
    circuit = mlp([8, 6, 4], rule=family, act="relu")
    for name, r in _by_name(circuit).items():
        assert r.expressible and r.kind == "three-factor", (name, r.reasons)
        assert r.rule_class == "Loihi3FLearningRule"
        assert r.traces["post.delta"].startswith("y2 = relu(delta) x ")
        assert ", y3 = relu(-delta) x " in r.traces["post.delta"]
        assert r.traces["pre.r"].startswith("x1 = payload / 2")
        m, e = r.constants[0].mantissa, r.constants[0].exp
        # -eta * relu(delta) * x1 + eta * relu(-delta) * x1: opposite mantissas
        assert r.loihi_rule == f"{m}*2^{e} * " + FA_STRING.format(m=-m, e=e)
        # a graded payload is rewritten every step: one epoch per window
        assert r.t_epoch == circuit.schedule.window
        assert r.trace_params == {"x1_tau": 255}
        assert not r.reasons


def test_fa_signed_pre_activity_is_a_reason_and_the_stream_a_condition():
    r = _by_name(SHIPPED["fa"])
    assert r["W2"].verdict == "no"
    assert "tanh(a) can be negative: x1 is unsigned" in r["W2"].reasons[0]
    # W1's pre is the data stream: must be >= 0
    assert r["W1"].verdict == "yes, if" and "data stream 'x'" in r["W1"].conditions[0]
    # the bias unit is the constant 1: no condition
    assert r["b1"].verdict == "yes" and not r["b1"].conditions


def test_bp_reason_is_weight_transport():
    r = _by_name(SHIPPED["bp"])
    assert r["W1"].reasons[0].startswith("weight transport: projection 'B1' carries the "
                                         "weights of 'W2' transposed")
    assert r["W1"].loihi_rule is None
    assert any("read by the tied projection(s) ['B1']" in x for x in r["W2"].reasons)


def test_ss_reason_is_sign_transport():
    r = _by_name(SHIPPED["ss"])["W1"]
    assert r.reasons[0].startswith("sign transport: projection 'B1' carries the sign of 'W2'")


def test_kp_decay_constant_is_out_of_range():
    r = _by_name(SHIPPED["kp"])
    # the w factor is counted in register steps, so the decay's constant is -lam itself
    assert r["W1"].reasons[0].startswith("term '-lam * w': its scaling constant -0.001")
    assert "outside the engine's range" in r["W1"].reasons[0]
    # B's pre factor is the signed error it carries
    assert "can be negative" in r["B1"].reasons[0]


def test_kp_with_a_larger_decay_is_expressible():
    c = mlp([8, 6, 4], rule="kp", lam=2.0 ** -6, act="relu")
    got = _by_name(c)
    for name in ("W1", "b1", "W2", "b2"):
        r = got[name]
        assert r.expressible, r.reasons
        decay = [k for k in r.constants if k.term == "-lam * w"][0]
        # K = -lam = -2^-6 = -2 * 2^-7 exactly
        assert (decay.mantissa, decay.exp, decay.rel_error) == (-2, -7, 0.0)
        assert r.loihi_rule.startswith("-2*2^-7 * u0 * w")
    assert not got["B1"].expressible    # its pre factor, the error, is signed


def test_pc_feedback_rule():
    b = _by_name(SHIPPED["pc"])["B1"]
    assert not b.expressible and "x - mu (a difference) can be negative" in b.reasons[0]
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
    r = _by_name(mlp([8, 6, 6, 4], rule="fa", muon=True, act="relu"))
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


def test_a_product_reads_one_post_factor():
    # delta * r**2: structurally traces, but the compiler gives a term one post trace
    c = _with_rule(mlp([8, 6, 4], rule="fa", act="relu"), "W2",
                   "dw = eta * post.delta * post.r**2 * pre.r")
    r = _by_name(c)["W2"]
    assert not r.expressible and "more than one post factor" in r.reasons[0]


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
    c = _with_rule(mlp([8, 6, 4], rule="fa", act="relu"), "W2", "dw = -eta * sign(w)",
                   {"eta": 0.05})
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
    c = mlp([8, 6, 4], rule="fa", eta=2.0 ** -4, act="relu")
    weights = {n: np.full(w.shape, 0.45) for n, w in c.init_weights(0).items()}
    r = _by_name(c, weights=weights)["W1"]
    # headroom 2: 0.9 / 255 -> lsb 2^-8 weight per register step. K = eta / (lsb * sx * sy *
    # decays), sx = 2^6, sy = 64 (no activity), decays exp(-5/255) x exp(-5/65535):
    # K = 2^-4 / (2^-8 * 2^6 * 64 * 0.98066) = 0.003983 steps per unit of x1 * y2; the
    # engine shifts the 7+7+4 = 18-bit product right by 3, so S = 8 K = 0.03187. The post
    # scale then moves down (never above the calibrated one, which would clip the
    # distribution's tail) to the smallest S the engine holds exactly that is >= 0.03187:
    # 4 * 2^-7 = 0.03125 is below, so 5 * 2^-7 (the bias blocks code their constant input
    # 1 as x1 = 1, so their S stay far above the lowest).
    # K is exactly 5 * 2^-10 and sy = 64 * 0.03187 / (5 * 2^-7) ~ 52
    k = r.constants[0]
    assert (k.mantissa, k.exp) == (-5, -7)
    assert k.value == pytest.approx(-5 * 2.0 ** -10) and k.rel_error < 1e-12
    from hardware_targets.onchip import plan_onchip

    plan = plan_onchip(c, weights, "fixed_pt")
    assert plan.projections["W1"].lsb == 2.0 ** -8
    wanted = 8 * 2.0 ** -4 / (2.0 ** -8 * 64 * 64 * np.exp(-5 / 255) * np.exp(-5 / 65535))
    assert plan.post_codes["h1"].traces[0].scale == pytest.approx(64 * wanted / (5 * 2.0 ** -7))
    assert plan.projections["b1"].pre.scale == 1.0


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
    c = _with_rule(mlp([8, 6, 4], rule="kp", act="relu"), "W2",
                   "dw = -eta * post.delta * pre.r - lam * w + eta * sign(w)",
                   {"eta": 0.01, "lam": 2.0 ** -6})
    checked = 0
    for circuit in [*SHIPPED.values(), c, mlp([8, 6, 4], rule="fa", act="relu")]:
        for r in expressibility_report(circuit):
            if r.loihi_rule is None:
                continue
            rule = lr.Loihi3FLearningRule(dw=r.loihi_rule, t_epoch=r.t_epoch)
            products = rule.dw.products
            # a constant per term; a term on two rails is two products
            assert len(products) >= len(r.constants)
            firsts = [p for p in products if p.dependency == "u"]
            assert len(firsts) == len(products)
            for k in r.constants:   # each term's first product, as Lava parsed it
                assert any((p.s_mantissa, p.s_exp - 7) == (k.mantissa, k.exp) for p in products)
            checked += 1
    assert checked > 10


# ---------------------------------------------------------------- spiking rules
from hardware_targets.expressibility import spike_trace  # noqa: E402
from neuro_pc.models.spiking import LIF, Trace, spiking_mlp  # noqa: E402

CHIP_TRACE = Trace(decay=float(np.exp(-1 / 8)), impulse=0.125, window_reset=False)


def _spiking(rule="fa", trace=None, **kw):
    return spiking_mlp([16, 12, 10], rule=rule, window=32, trace=trace, **kw)


@pytest.mark.parametrize("rule", ["fa", "dfa"])
def test_spiking_counter_trace_is_not_on_chip(rule):
    # the default rate trace counts spikes (decay 1) and restarts each window: the engine
    # never resets a trace, so on chip it would count every spike since the start
    got = _by_name(_spiking(rule))
    for name in ("W1", "W2"):
        r = got[name]
        assert not r.expressible and "has decay 1" in r.reasons[0]
        assert "Trace(decay=exp(-1/tau), window_reset=False)" in r.reasons[0]


@pytest.mark.parametrize("rule", ["fa", "dfa"])
def test_spiking_chip_trace_compiles_to_the_engine_trace(rule):
    got = _by_name(_spiking(rule, trace=CHIP_TRACE))
    assert set(got) == {"W1", "b1", "W2", "b2"}
    for name, r in got.items():
        assert r.verdict == "yes", (name, r.reasons, r.conditions)
        assert r.kind == "three-factor" and r.rule_class == "Loihi3FLearningRule"
        # the rails en, ep are >= 0: one trace each, no sign split
        assert r.traces["post.en"].startswith("y2 = en x ")
        assert r.traces["post.ep"].startswith("y3 = ep x ")
        # spikes: one-step epochs so that x1 follows the trace's recursion
        assert r.t_epoch == 1
        if name.startswith("W"):
            # tau = 8 steps exactly; impulse 1/8 of a value: a spike trace is coded with
            # 4 fractional bits (spike_frac_bits), so 2^4 / 8 = 2 trace units
            assert r.trace_params == {"x1_tau": 8.0, "x1_impulse": 2.0}
        else:
            # the always-spiking bias unit: a trace whose steady state is its constant
            assert r.trace_params["x1_tau"] == 8.0
        m, e = r.constants[0].mantissa, r.constants[0].exp
        assert r.loihi_rule.startswith(f"{m}*2^{e} * u0 * x1 * y2 - ")


def test_spiking_rules_check_cli_output():
    from hardware_targets.check import check_report, format_check

    text = format_check(check_report(_spiking(trace=CHIP_TRACE), "loihi2"))
    assert "pre.tr -> x1" in text and "x1_impulse=2, x1_tau=8, t_epoch=1" in text
    assert "summary: 4/4 rules on chip" in text


def test_chip_trace_conditions_name_tau_rounding():
    # decay 0.9: tau = 9.49 steps; Lava's x1_tau is an integer
    r = _by_name(_spiking(trace=Trace(decay=0.9, impulse=0.1, window_reset=False)))["W1"]
    assert any("x1_tau = 9 decays by exp(-1/9) = 0.8948" in c for c in r.conditions)
    assert not any("restarts at 0" in c for c in r.conditions)


def test_spike_trace_is_read_from_the_statement_that_runs():
    c = _spiking(lif=LIF(v_decay=0.9, reset="zero", refractory=1),
                 trace=Trace(decay=0.8, impulse=0.25))
    tr, why = spike_trace(c, "h1", "tr")
    assert why == ""
    assert (tr.spike, tr.decay, tr.impulse, tr.window_reset) == ("s", 0.8, 0.25, True)
    # the membrane is not a trace of the spikes
    assert spike_trace(c, "h1", "v")[0] is None
    # metadata says nothing: a builder's record that disagrees changes no verdict
    bad = c.replace(metadata={**c.metadata, "trace": {"decay": 0.5}})
    assert spike_trace(bad, "h1", "tr") == (tr, "")


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
    for trace in (CHIP_TRACE, Trace(decay=0.9, impulse=0.1, window_reset=False)):
        for r in expressibility_report(_spiking(trace=trace)):
            rule = lr.Loihi3FLearningRule(dw=r.loihi_rule, t_epoch=r.t_epoch, **r.trace_params)
            assert rule.x1_tau == r.trace_params.get("x1_tau", 0)
            assert rule.x1_impulse == r.trace_params.get("x1_impulse", 0)
            assert len(rule.dw.products) == len(r.constants)   # en, ep: one trace each
