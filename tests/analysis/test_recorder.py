"""The alignment recorder, the norm/Muon options of the MLP builder and their locality."""
import numpy as np
import pytest

from neuro_pc.analysis import (NS_COEFFS, RANK_MEASURES, AlignmentRecorder, angle,
                               bp_counterpart, rank_measures)
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.models import mlp
from neuro_pc.rules import circuit_level, locality_report

SIZES = [8, 12, 10, 4]


def batch(n=32, sizes=SIZES, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, sizes[0]))
    y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]
    return x, y


# ---------------------------------------------------------------------------
# BP against itself
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("norm", [None, "layernorm", "batchnorm"])
def test_bp_angle_to_itself_is_zero(norm):
    x, y = batch()
    c = mlp(SIZES, rule="bp", norm=norm, eta=0.1)
    sim = ReferenceSimulator(c, seed=3)
    rec = AlignmentRecorder(c, x, y)
    rec.record(sim.weights, -1)
    sim.train(x, y, epochs=2, batch_size=8, callback=rec)
    assert rec.by_layer("angle_update_deg").shape == (3, 3)
    # 0 up to round-off (the trained circuit's eta differs from the reference's eta = 1)
    assert np.all(rec.by_layer("angle_update_deg") < 1e-6)
    assert np.all(rec.by_layer("angle_signal_deg") < 1e-6)
    for m in RANK_MEASURES:
        np.testing.assert_array_equal(rec.by_layer("rank", m, "signal"),
                                      rec.by_layer("rank", m, "signal_bp"))


def test_fa_is_not_bp_but_its_output_layer_is():
    x, y = batch()
    c = mlp(SIZES, rule="fa")
    rec = AlignmentRecorder(c, x, y)
    rec.record(ReferenceSimulator(c, seed=1).weights)
    ang = rec.by_layer("angle_signal_deg")[0]          # h1, h2, out
    assert ang[-1] < 1e-6 and np.all(ang[:-1] > 10.0)
    assert rec.by_layer("angle_update_deg")[0, -1] < 1e-6


# ---------------------------------------------------------------------------
# output keys and shapes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("rule,kw", [("fa", {}), ("dfa", {}), ("kp", {"lam": 1e-3}),
                                     ("fa", {"norm": "layernorm"}), ("fa", {"muon": True}),
                                     ("pc", {})])
def test_recorder_keys_and_shapes(rule, kw):
    x, y = batch(n=40)
    c = mlp(SIZES, rule=rule, **kw)
    sim = ReferenceSimulator(c, seed=0)
    rec = AlignmentRecorder(c, x, y)
    rec.record(sim.weights, -1, sim=sim)
    sim.train(x, y, epochs=3, batch_size=10, callback=rec)
    res = rec.results()
    n = 4
    assert res["steps"] == [-1, 0, 1, 2]
    assert res["layers"] == ["h1", "h2", "out"]
    assert res["projections"] == ["W1", "W2", "W3"]
    assert res["n_samples"] == 40 and res["rank_measures"] == list(RANK_MEASURES)
    for key in ("angle_update_deg", "angle_signal_deg", "rank", "loss"):
        assert key in res
    assert len(res["loss"]) == n
    for p in res["projections"]:
        assert len(res["angle_update_deg"][p]) == n
    for layer in res["layers"]:
        assert len(res["angle_signal_deg"][layer]) == n
        for kind in ("signal", "signal_bp"):
            assert set(res["rank"][kind][layer]) == set(RANK_MEASURES)
            assert all(len(v) == n for v in res["rank"][kind][layer].values())
    for kind in ("update", "update_bp"):
        assert set(res["rank"][kind]) == {"W1", "W2", "W3"}
    assert rec.by_layer("angle_signal_deg").shape == (n, 3)
    assert rec.by_layer("rank", "erank", "update").shape == (n, 3)
    # feedback matrices and what they stand in for
    expected = {"fa": {"B1": "(W2)ᵀ", "B2": "(W3)ᵀ"}, "kp": {"B1": "(W2)ᵀ", "B2": "(W3)ᵀ"},
                "dfa": {"B1": "(W3 W2)ᵀ", "B2": "(W3)ᵀ"}, "pc": {"B1": "(W2)ᵀ", "B2": "(W3)ᵀ"}}
    assert res["feedback"] == expected[rule]
    for b in res["feedback"]:
        assert rec.array("weight_alignment", b, "angle_deg").shape == (n,)
        assert np.all(rec.array("weight_alignment", b, "norm_ratio") > 0)
    if kw.get("muon"):
        assert set(res["muon"]) == {"W1", "W2"}
        assert set(res["muon"]["W1"]) == {"erank_batch_update", "erank_batch_orthogonalised",
                                          "erank_momentum", "erank_momentum_orthogonalised"}
        assert np.isnan(res["muon"]["W1"]["erank_momentum"][0])     # before the first step
        assert np.all(np.isfinite(res["muon"]["W1"]["erank_momentum"][1:]))
    else:
        assert "muon" not in res
    if rule == "pc":
        e = rec.array("pc_energy", "per_step")
        assert e.shape == (n, c.schedule.window, 3)           # (records, T, layers)
        assert res["pc_energy"]["layers"] == ["h1", "h2", "out"]
        assert np.all(e >= 0)
        # inference lowers the energy after the output is clamped
        assert np.all(e[:, -1].sum(-1) <= e[:, len(SIZES) - 1].sum(-1) + 1e-12)
    else:
        assert "pc_energy" not in res
    import json
    json.dumps(res)                                            # JSON-able


def test_recorder_rank_matches_the_metric_on_the_state():
    x, y = batch(n=50)
    c = mlp(SIZES, rule="fa")
    sim = ReferenceSimulator(c, seed=2)
    rec = AlignmentRecorder(c, x, y)
    point = rec.record(sim.weights, 0)
    probe = ReferenceSimulator(c, sim.weights)
    probe.compute_updates(x, y)
    want = rank_measures(probe.state["h1.delta"])
    for m in RANK_MEASURES:
        assert point[f"rank/signal/h1/{m}"] == pytest.approx(want[m], rel=1e-12)


def test_bp_counterpart_needs_an_mlp():
    c = mlp(SIZES, rule="fa").replace(metadata={})
    with pytest.raises(ValueError, match="mlp"):
        bp_counterpart(c)


# ---------------------------------------------------------------------------
# normalisation: the local derivative is exact for layer norm
# ---------------------------------------------------------------------------

def _loss(circuit, weights, x, y):
    out = ReferenceSimulator(circuit, weights).present(x, y, train=True, learn=False)
    return 0.5 * np.mean(np.sum((out - y) ** 2, axis=1))


def test_layernorm_bp_update_is_the_exact_gradient():
    x, y = batch(n=6)
    c = mlp(SIZES, rule="bp", norm="layernorm", eta=1.0)
    sim = ReferenceSimulator(c, seed=4)
    w = {k: v + 0.1 * np.random.default_rng(1).normal(size=v.shape) for k, v in sim.weights.items()}
    dw = ReferenceSimulator(c, w).compute_updates(x, y)      # = −∂L/∂W (eta = 1)
    rng = np.random.default_rng(5)
    for name in ("W1", "b1", "W2"):
        for _ in range(3):
            i, j = (rng.integers(s) for s in w[name].shape)
            h = 1e-6
            wp = {k: v.copy() for k, v in w.items()}
            wm = {k: v.copy() for k, v in w.items()}
            wp[name][i, j] += h
            wm[name][i, j] -= h
            fd = (_loss(c, wp, x, y) - _loss(c, wm, x, y)) / (2 * h)
            assert -dw[name][i, j] == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_norm_options_do_not_change_the_default_circuit():
    for rule in ("bp", "fa", "dfa", "ss", "kp", "pc"):
        assert mlp(SIZES, rule=rule) == mlp(SIZES, rule=rule, norm=None, muon=False)
    with pytest.raises(ValueError, match="norm"):
        mlp(SIZES, rule="fa", norm="groupnorm")
    with pytest.raises(ValueError, match="predictive coding"):
        mlp(SIZES, rule="pc", norm="layernorm")


# ---------------------------------------------------------------------------
# locality: normalisation and Muon are population-level
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("norm", ["layernorm", "batchnorm"])
def test_normalisation_is_population_level(norm):
    rep = locality_report(mlp(SIZES, rule="fa", norm=norm))
    assert [r.level for r in rep] == ["population-level"] * len(rep)
    fn = "popmean" if norm == "layernorm" else "batchmean"
    assert all(fn in "; ".join(r.reasons) for r in rep)
    assert circuit_level(locality_report(mlp(SIZES, rule="fa"))) == "neuron-local"


def test_layernorm_population_computes_layernorm():
    from neuro_pc.ir.functions import layernorm

    x, y = batch(n=5)
    sim = ReferenceSimulator(mlp(SIZES, rule="fa", norm="layernorm"), seed=0)
    sim.present(x, y, train=False)
    for h in ("h1", "h2"):
        np.testing.assert_allclose(sim.state[f"{h}.n"], layernorm(sim.state[f"{h}.a"]),
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(sim.state[f"{h}.r"], np.tanh(sim.state[f"{h}.n"]))


def test_muon_is_population_level_on_the_hidden_weights_only():
    rep = {r.projection: r for r in locality_report(mlp(SIZES, rule="fa", muon=True))}
    for name in ("W1", "W2"):
        assert rep[name].level == "population-level"
        assert rep[name].transforms == ("muon",)
        assert "muon" in rep[name].reasons[0]
    for name in ("W3", "b1", "b2", "b3"):
        assert rep[name].level == "neuron-local"
    # BP stays network-global (weight transport dominates)
    assert circuit_level(locality_report(mlp(SIZES, rule="bp", muon=True))) == "network-global"


# ---------------------------------------------------------------------------
# Muon in the circuit: batch 1 without momentum is a scaled Hebbian outer product
# ---------------------------------------------------------------------------

def _p5(x):
    a, b, c = NS_COEFFS
    for _ in range(5):
        x = a * x + b * x ** 3 + c * x ** 5
    return x


def test_muon_at_batch_1_without_momentum_is_a_scaled_hebbian_update():
    x, y = batch(n=3)
    c = mlp(SIZES, rule="fa", muon=True, muon_beta=0.0)
    sim = ReferenceSimulator(c, seed=0)
    for k in range(3):
        before = {n: w.copy() for n, w in sim.weights.items()}
        hebb = ReferenceSimulator(c, before).compute_updates(x[k:k + 1], y[k:k + 1])
        sim.present(x[k:k + 1], y[k:k + 1], train=True)
        for name in ("W1", "W2"):
            applied = sim.weights[name] - before[name]
            rows, cols = applied.shape
            # the plain rule's update −eta·δ·preᵀ is rank 1; Muon keeps its direction...
            assert rank_measures(hebb[name])["erank"] == pytest.approx(1.0)
            assert angle(applied, hebb[name]) < 1e-4
            # ...and its rank (cannot raise it), only rescaling it to a fixed norm:
            # Newton–Schulz's image of a unit singular value, times muon_lr and
            # Muon's shape factor
            assert rank_measures(applied)["erank"] == pytest.approx(1.0)
            lr = c.projection(name).rule.params["muon_lr"]
            kappa = _p5(1.0) * lr * max(1.0, rows / cols) ** 0.5
            assert np.linalg.norm(applied) == pytest.approx(kappa, rel=1e-5)
        # the plain (non-Muon) output layer is untouched by the transform
        np.testing.assert_allclose(sim.weights["W3"] - before["W3"], hebb["W3"], atol=1e-15)


def test_muon_raises_the_rank_only_through_momentum():
    x, y = batch(n=2)
    c = mlp(SIZES, rule="fa", muon=True, muon_beta=0.9)
    sim = ReferenceSimulator(c, seed=0)
    start = sim.weights["W2"].copy()
    sim.present(x[:1], y[:1], train=True)
    before = sim.weights["W2"].copy()
    sim.present(x[1:], y[1:], train=True)
    second = sim.weights["W2"] - before
    s = np.linalg.svd(second, compute_uv=False)
    assert s[1] > 1e-3 * s[0]                  # rank 2: the momentum mixed two samples
    first = np.linalg.svd(before - start, compute_uv=False)
    assert first[1] < 1e-10 * first[0]         # the first step alone: rank 1
