"""The rule language: parsing into sum-of-products terms, rejection of
non-local or malformed rules, and the locality report of every shipped rule."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.ir import Circuit, Population, Projection, Rule, Schedule
from neuro_pc.models import mlp
from neuro_pc.rules import NonLocalRuleError, RuleError, locality_report, parse_rule


def test_fa_rule_terms():
    r = parse_rule("dw = -eta * post.delta * pre.r - lam * w", {"eta": 0.1, "lam": 0.01})
    terms = {(t.coef, t.post, t.pre, t.syn) for t in r.terms}
    assert terms == {("-eta", "delta", "r", None), ("-lam", None, None, "w")}
    assert r.post_vars == {"delta"} and r.pre_vars == {"r"} and r.syn_vars == {"w"}
    assert r.level == "neuron-local"
    assert parse_rule("dw = -lam * w", {"lam": 1}).level == "synapse-local"


@pytest.mark.parametrize("text, exc, words", [
    ("dw = eta * post.a * W2", NonLocalRuleError, ["'W2'", "non-local factor"]),
    ("dw = eta * other.r * pre.r", NonLocalRuleError, ["'other'"]),
    ("dw = eta * tanh(post.a + pre.r)", NonLocalRuleError, ["tanh(post.a + pre.r)", "mixes"]),
    ("dw = eta * popsum(post.r) * pre.r", NonLocalRuleError, ["popsum", "population-level"]),
    ("dw = eta * foo(post.r)", RuleError, ["unknown function(s) ['foo']"]),
    ("w = eta * post.r", RuleError, ["left side", "must be 'dw'"]),
    ("dw = eta * (post.r", RuleError, ["cannot parse"]),
    ("dw =", RuleError, ["nothing right of '='"]),
    ("eta * post.r", RuleError, ["must read 'dw = <expression>'"]),
])
def test_bad_rules_are_rejected_with_the_reason(text, exc, words):
    with pytest.raises(exc) as err:
        parse_rule(text, {"eta": 0.1})
    for w in words:
        assert w in str(err.value), str(err.value)


def test_marked_baseline_accepts_nonlocal_names():
    r = parse_rule("dw = eta * post.a * G", {"eta": 1}, allow_nonlocal=True)
    assert r.terms[0].coef in ("G*eta", "eta*G")


def _one_projection(rule_text, params):
    pops = (Population("a", 3, ("r", "s"), update=("s = r * 2",), streams={"r": "x"}),
            Population("b", 2, ("u", "v"), ports=("ff",), streams={"u": "y"},
                       update=("v = tanh(ff)",), output="v"))
    projs = (Projection("W", "a", "b", "ff", rule=Rule(rule_text, params)),)
    return Circuit("one", pops, projs, Schedule(1), streams={"x": 3, "y": 2})


@settings(max_examples=40, deadline=None)
@given(c1=st.floats(-2, 2), c2=st.floats(-2, 2), c3=st.floats(-2, 2), seed=st.integers(0, 99))
def test_parsed_rule_executes_its_formula(c1, c2, c3, seed):
    """The reference backend's execution of a parsed rule equals the rule's
    formula evaluated directly, synapse by synapse (after sympy's expansion)."""
    text = "dw = c1 * (post.u + post.v) * tanh(pre.s) + c2 * pre.r * w - c3 * post.u * w"
    c = _one_projection(text, {"c1": c1, "c2": c2, "c3": c3})
    sim = ReferenceSimulator(c, seed=seed)
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(1, 3)), rng.normal(size=(1, 2))
    w0 = sim.weights["W"].copy()
    sim.present(x, y, train=True)
    post_u, post_v = y[0], np.tanh(np.zeros(2))  # ff is 0 at the first step (delay)
    pre_r, pre_s = x[0], 2 * x[0]
    want = (c1 * np.outer(post_u + post_v, np.tanh(pre_s)) + c2 * pre_r[None, :] * w0
            - c3 * post_u[:, None] * w0)
    np.testing.assert_allclose(sim.weights["W"] - w0, want, atol=1e-12)


def _levels(rule, **kw):
    return {r.projection: (r.level, r.weight_transport)
            for r in locality_report(mlp([5, 4, 3, 2], rule=rule, **kw))}


def test_locality_of_every_shipped_rule():
    bp = _levels("bp")
    assert bp["W1"] == ("network-global", "weights") and bp["W2"] == ("network-global", "weights")
    assert bp["W3"] == ("neuron-local", None)   # the output layer's delta is local
    for rule in ("fa", "dfa", "pc"):
        assert set(_levels(rule).values()) == {("neuron-local", None)}, rule
    assert set(_levels("kp", lam=1e-3).values()) == {("neuron-local", None)}
    assert _levels("ss")["W1"] == ("network-global", "sign")
    assert _levels("pc", feedback="tied")["W1"] == ("network-global", "weights")


def test_population_level_function_and_transform_are_reported():
    c = mlp([5, 4, 2], rule="fa")
    import dataclasses

    h1 = c.population("h1")
    h1n = dataclasses.replace(h1, update=("a = ff", "r = tanh(layernorm(a))",
                                          "delta = fb * (1 - r**2)"))
    c2 = dataclasses.replace(c, populations=tuple(h1n if p is h1 else p for p in c.populations))
    rep = {r.projection: r for r in locality_report(c2)}
    assert rep["W1"].level == "population-level"
    assert "layernorm" in rep["W1"].reasons[0]
    w1 = c.projection("W1")
    muon = dataclasses.replace(w1, rule=dataclasses.replace(w1.rule, transforms=("muon",)))
    c3 = dataclasses.replace(c, projections=tuple(muon if p is w1 else p for p in c.projections))
    assert {r.projection: r.level for r in locality_report(c3)}["W1"] == "population-level"
    rows = dataclasses.replace(w1, rule=dataclasses.replace(w1.rule, transforms=("unit_rows",)))
    c4 = dataclasses.replace(c, projections=tuple(rows if p is w1 else p for p in c.projections))
    r4 = {r.projection: r for r in locality_report(c4)}["W1"]
    assert r4.level == "population-level" and r4.transforms == ("unit_rows",)
