"""Spiking models: LIF f–I curves, traces, encoders, spiking FA/DFA circuits,
and spike-train equality across backends (activates once Brian2/Lava compile
these circuits)."""

import numpy as np
import pytest

from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.ir import Circuit, Init, Population, Projection, Schedule
from neuro_pc.models.spiking import (LIF, RateEncoder, Trace, encoder_count, lif_population,
                                     lif_rate, lif_rate_continuous, poisson_spikes,
                                     shipped_spiking_circuits, spike_input, spike_variables,
                                     spiking_mlp, spiking_pc)
from neuro_pc.models.spiking.builders import hinge_target
from neuro_pc.rules import locality_report


# --------------------------------------------------------------------------- helpers
def driven(lif: LIF, currents, window: int) -> Circuit:
    """A constant current per unit (streamed ``x``) into a LIF population."""
    n = len(currents)
    pops = (Population("x", n, ("r",), streams={"r": "x"}, model="input"),
            lif_population("n", n, lif, Trace(), window=window))
    projs = (Projection("I", "x", "n", "ff", init=Init("identity", 1.0)),)
    return Circuit("lif_probe", pops, projs, Schedule(window), streams={"x": n})


def spikes_of(lif: LIF, currents, window: int) -> np.ndarray:
    """(T, n) spikes of ``driven``; the drive reaches the unit from step 1."""
    sim = ReferenceSimulator(driven(lif, currents, window), record=[("n", "s")])
    sim.present(np.atleast_2d(np.asarray(currents, float)), train=False)
    return sim.monitor["n.s"][:, 0, :]


def small_problem(n=240, n_in=16, k=4, seed=0):
    """k noisy prototypes in [0, 1]^n_in."""
    rng = np.random.default_rng(seed)
    protos = rng.random((k, n_in))
    labels = rng.integers(k, size=n)
    x = np.clip(protos[labels] + 0.15 * rng.standard_normal((n, n_in)), 0, 1)
    return x, labels


# --------------------------------------------------------------------------- LIF
@pytest.mark.parametrize("lif", [
    LIF(v_decay=1.0, reset="zero"),
    LIF(v_decay=0.9, reset="zero"),
    LIF(v_decay=0.8, reset="zero", refractory=2),
    LIF(v_decay=0.95, thr=2.0, reset="zero", refractory=1),
])
def test_lif_firing_rate_equals_discrete_f_I_curve(lif):
    currents = np.array([0.047, 0.13, 0.26, 0.41, 0.7, 1.3, 2.5])  # no exact ties
    T = 400
    s = spikes_of(lif, currents, T)
    rate = lif_rate(currents, lif)
    for j, c in enumerate(currents):
        t = np.flatnonzero(s[:, j])
        if rate[j] == 0:
            assert t.size == 0, f"current {c}: expected silence"
            continue
        period = round(1 / rate[j])
        # first spike after k* integration steps (the drive arrives at step 1),
        # then every refractory + k* steps exactly
        assert t[0] == period - lif.refractory
        np.testing.assert_array_equal(np.diff(t), period)


def test_lif_discrete_f_I_approaches_continuous_curve():
    tau, thr, t_ref = 200.0, 1.0, 5.0
    lif = LIF.from_tau(tau, reset="zero", thr=thr, refractory=int(t_ref))
    currents = np.linspace(0.008, 0.05, 12)
    np.testing.assert_allclose(lif_rate(currents, lif),
                               lif_rate_continuous(currents, tau, thr, t_ref), rtol=0.05)
    T = 1500  # and the simulated rate matches
    s = spikes_of(lif, currents, T)
    for j in range(len(currents)):
        t = np.flatnonzero(s[:, j])
        assert len(t) >= 3
        assert np.diff(t).mean() == pytest.approx(1 / lif_rate(currents[j], lif)[0])


def test_nonleaky_subtractive_unit_fires_at_clipped_current():
    currents = np.array([-0.3, 0.0, 0.1, 0.37, 0.5, 0.93, 1.0, 1.7])
    T = 201
    s = spikes_of(LIF(), currents, T)
    expected = np.clip(currents, 0, 1) * (T - 1)   # T - 1 driven steps
    assert np.all(np.abs(s.sum(0) - expected) <= 1.0)


def test_current_based_lif_filters_its_input():
    """i = i * a + I reaches I / (1 - a); with no leak and subtractive reset the
    long-run rate is the filtered current (clipped to one spike per step)."""
    a = 0.5
    s = spikes_of(LIF(i_decay=a), [0.1, 0.3], 401)
    np.testing.assert_allclose(s.sum(0) / 400, np.array([0.1, 0.3]) / (1 - a), atol=0.01)


def test_lif_rejects_bad_parameters():
    with pytest.raises(ValueError, match="reset"):
        LIF(reset="hold")
    with pytest.raises(ValueError, match="v_decay"):
        LIF(v_decay=1.5)
    with pytest.raises(ValueError, match="refractory"):
        LIF(refractory=1.5)


# --------------------------------------------------------------------------- traces, encoders
def test_trace_decay_matches_closed_form():
    tr = Trace(decay=0.8, impulse=0.3)
    T = 40
    pop = spike_input("x", 5, T, RateEncoder(gain=1.0), tr)
    c = Circuit("enc", (pop,), (), Schedule(T), streams={"x": 5})
    sim = ReferenceSimulator(c, record=[("x", "s"), ("x", "tr")])
    sim.present(np.array([[0.0, 0.07, 0.3, 0.55, 1.0]]), train=False)
    s, trace = sim.monitor["x.s"][:, 0, :], sim.monitor["x.tr"][:, 0, :]
    for j in range(5):
        times = np.flatnonzero(s[:, j])
        closed = [tr.value_after(times, t) for t in range(T)]
        np.testing.assert_allclose(trace[:, j], closed, rtol=1e-12, atol=1e-15)
    # a single spike decays as impulse * decay**k
    one = np.flatnonzero(s[:, 1])[0]
    k = np.arange(T - one)[: np.diff(np.flatnonzero(s[:, 1]))[0]]
    np.testing.assert_allclose(trace[one + k, 1], 0.3 * 0.8 ** k)
    assert Trace.from_tau(5.0).decay == pytest.approx(np.exp(-1 / 5))
    assert Trace(decay=1.0, impulse=1 / T).always_on(T) == pytest.approx(1.0)


@pytest.mark.parametrize("window", [7, 16, 33])
@pytest.mark.parametrize("encoder", [RateEncoder(), RateEncoder(gain=0.5, phase=0.0),
                                     RateEncoder(gain=2.0, phase=0.25)])
def test_deterministic_encoder_spike_count(window, encoder):
    rates = np.array([[0.0, 1 / 16, 0.2, 0.5, 0.51, 0.75, 0.9, 1.0, 1.4, -0.2]])
    pop = spike_input("x", rates.shape[1], window, encoder)
    c = Circuit("enc", (pop,), (), Schedule(window), streams={"x": rates.shape[1]})
    sim = ReferenceSimulator(c, record=[("x", "s")])
    sim.present(rates, train=False)
    counts = sim.monitor["x.s"].sum(axis=0)[0]
    np.testing.assert_array_equal(counts, encoder_count(rates[0], window, encoder))
    sim.present(rates, train=False)   # every window starts afresh
    np.testing.assert_array_equal(sim.monitor["x.s"].sum(axis=0)[0], counts)


def test_poisson_spikes_are_seeded_and_have_the_rate():
    rates = np.array([[0.1, 0.5, 0.9], [0.0, 1.0, 0.3]])
    a, b = poisson_spikes(rates, 2000, seed=3), poisson_spikes(rates, 2000, seed=3)
    assert a.shape == (2, 2000, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, poisson_spikes(rates, 2000, seed=4))
    np.testing.assert_allclose(a.mean(axis=1), rates, atol=0.03)


# --------------------------------------------------------------------------- circuits
def test_spiking_mlp_validates_and_round_trips_json():
    for c in shipped_spiking_circuits().values():
        c.validate()
        assert Circuit.from_json(c.to_json()) == c
    c = spiking_mlp([6, 5, 4, 3], rule="dfa", window=12)
    fb = {p.name: (p.source, p.target) for p in c.projections if p.name.startswith("B")}
    assert fb == {"B1": ("out", "h1"), "B2": ("out", "h2")}
    c = spiking_mlp([6, 5, 4, 3], rule="fa", window=12)
    fb = {p.name: (p.source, p.target) for p in c.projections if p.name.startswith("B")}
    assert fb == {"B1": ("h2", "h1"), "B2": ("out", "h2")}
    with pytest.raises(ValueError, match="window"):
        spiking_mlp([6, 5, 3], window=3)
    with pytest.raises(ValueError, match="rule"):
        spiking_mlp([6, 5, 3], rule="bp")


@pytest.mark.parametrize("rule", ["fa", "dfa"])
@pytest.mark.parametrize("two_rail", [True, False])
def test_spiking_rules_are_neuron_local(rule, two_rail):
    c = spiking_mlp([6, 5, 4, 3], rule=rule, window=12, two_rail=two_rail)
    report = locality_report(c)
    assert {r.projection for r in report} == {"W1", "W2", "W3", "b1", "b2", "b3"}
    for r in report:
        assert r.level == "neuron-local", r
        assert r.weight_transport is None
        assert r.pre_vars == ("tr",)
        assert r.post_vars == (("en", "ep") if two_rail else ("delta",))


def test_two_rail_rule_equals_signed_rule():
    x, labels = small_problem(n=20)
    y = np.eye(4)[labels]
    sims = [ReferenceSimulator(spiking_mlp([16, 12, 4], window=12, two_rail=t, init_scale=2.0),
                               seed=1) for t in (True, False)]
    for s in sims:
        s.train(x, y, epochs=1, seed=0)
    for k in sims[0].weights:
        np.testing.assert_allclose(sims[0].weights[k], sims[1].weights[k], atol=1e-12)


def test_windows_are_independent():
    c = spiking_mlp([16, 12, 4], window=12, init_scale=2.0)
    spikes = spike_variables(c)
    sim = ReferenceSimulator(c, seed=0, record=spikes)
    x, _ = small_problem(n=2)
    sim.present(x[:1], train=False)
    first = {k: v.copy() for k, v in sim.monitor.items()}
    sim.present(x[1:], train=False)
    sim.present(x[:1], train=False)
    for k in first:
        np.testing.assert_array_equal(sim.monitor[k], first[k])


def test_hidden_error_is_fed_back_error_gated_by_firing():
    """At the window's end: out.delta = rate - target*y, and h.delta =
    (B @ out.delta one step earlier) * [unit fired]."""
    c = spiking_mlp([16, 12, 4], rule="fa", window=12, init_scale=2.0, target_rate=0.8)
    sim = ReferenceSimulator(c, seed=0, record=[("out", "delta"), ("h1", "tr"), ("h1", "delta"),
                                                ("out", "s")])
    x, labels = small_problem(n=1)
    y = np.eye(4)[labels]
    sim.present(x, y, train=True, learn=False)
    m = sim.monitor
    np.testing.assert_allclose(m["out.delta"][-1], m["out.s"].sum(0) / 12 - 0.8 * y)
    expected = (m["out.delta"][-2] @ sim.weights["B1"].T) * (m["h1.tr"][-1] > 0)
    np.testing.assert_allclose(m["h1.delta"][-1], expected)


def test_hinge_output_error_pushes_the_correct_output_up_to_the_target_only():
    """out.delta = (1 - y) * rate - y * relu(target - rate) at the window's end."""
    c = spiking_mlp([16, 12, 4], rule="fa", window=12, init_scale=2.0, target_rate=0.5,
                    output_error="hinge")
    sim = ReferenceSimulator(c, seed=0, record=[("out", "delta"), ("out", "s")])
    x, _ = small_problem(n=16)
    sim.present(x, None, train=False)
    fastest = sim.monitor["out.s"].sum(0).argmax(1)
    # half the samples labelled with their fastest output, half with another one
    y = np.eye(4)[np.where(np.arange(16) % 2 == 0, fastest, (fastest + 1) % 4)]
    sim.present(x, y, train=True, learn=False)
    rate = sim.monitor["out.s"].sum(0) / 12
    want = (1 - y) * rate - y * np.maximum(0.5 - rate, 0)
    np.testing.assert_allclose(sim.monitor["out.delta"][-1], want)
    # every case met: a correct output above the target (error 0), one below, a wrong one firing
    assert (rate * y > 0.5).any() and ((rate < 0.5) & (y == 1)).any()
    assert (rate * (1 - y) > 0).any()
    with pytest.raises(ValueError, match="output_error"):
        spiking_mlp([16, 12, 4], output_error="softmax")


@pytest.mark.parametrize("rule", ["fa", "dfa"])
@pytest.mark.parametrize("sizes", [[5, 6, 3], [5, 6, 4, 3]])
def test_hinge_target_is_the_highest_rate_every_layer_sees(rule, sizes):
    """Every unit driven to fire as fast as it can and every output correct: at
    hinge_target no hidden unit gets an error (the outputs' counts, read late, all
    reach it); one spike per window higher, some hidden unit does."""
    T = 16
    L = len(sizes) - 1
    x, y = np.ones((1, sizes[0])), np.ones((1, sizes[-1]))
    deltas = []
    for extra in (0.0, 1.0 / T):
        c = spiking_mlp(sizes, rule=rule, window=T, output_error="hinge", bias=False,
                        target_rate=hinge_target(L, T, rule) + extra)
        w = {k: (np.full_like(v, 50.0) if k.startswith("W") else v)
             for k, v in c.init_weights(0).items()}
        sim = ReferenceSimulator(c, w)
        sim.present(x, y, train=True, learn=False)
        deltas.append(max(np.abs(sim.state[f"h{l}.delta"]).max() for l in range(1, L)))
    assert deltas[0] == 0 and deltas[1] > 0, deltas
    assert hinge_target(2, 128) == 125 / 128


@pytest.mark.parametrize("rule", ["fa", "dfa"])
def test_spiking_fa_learns_above_chance_quickly(rule):
    x, labels = small_problem(n=240)
    xt, lt = small_problem(n=200, seed=0)[0][120:], small_problem(n=200, seed=0)[1][120:]
    c = spiking_mlp([16, 24, 4], rule=rule, window=16, eta=0.02)
    sim = ReferenceSimulator(c, seed=0)
    before = sim.evaluate(xt, lt)
    sim.train(x, np.eye(4)[labels], epochs=3, seed=0)
    after = sim.evaluate(xt, lt)
    assert after >= 0.8 > before or after >= 0.9, (before, after)


# --------------------------------------------------------------------------- spiking PC
@pytest.mark.parametrize("make", ["spiking", "rate"])
def test_dfa_is_fa_with_one_hidden_layer(make):
    """With one hidden layer DFA's direct projection e -> hidden is FA's B1: the same
    circuit, the same training to the bit (the onchip experiment relies on this to
    run spiking FA once for both; docs/targets/onchip.md)."""
    from neuro_pc.models import mlp

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (20, 8)), np.eye(4)[rng.integers(0, 4, 20)]

    def build(rule, hidden):
        if make == "rate":
            return mlp([8, *hidden, 4], rule=rule, act="relu")
        return spiking_mlp([8, *hidden, 4], rule=rule, window=8, eta=0.05,
                           trace=Trace(decay=np.exp(-1 / 4), impulse=1 / 4, window_reset=False))

    def trained(rule, hidden):
        return ReferenceSimulator(build(rule, hidden), seed=3).train(x, y, epochs=1,
                                                                      seed=1).weights

    fa, dfa = trained("fa", [12]), trained("dfa", [12])
    assert sorted(fa) == sorted(dfa)
    for k in fa:
        np.testing.assert_array_equal(fa[k], dfa[k], err_msg=k)
    # with two hidden layers they differ (DFA sends e to the first directly)
    fa2, dfa2 = trained("fa", [12, 6]), trained("dfa", [12, 6])
    assert not np.array_equal(fa2["W1"], dfa2["W1"])


def test_spiking_pc_structure():
    c = spiking_pc([6, 5, 4, 3], window=12)
    c.validate()
    assert Circuit.from_json(c.to_json()) == c
    fb = {p.name: (p.source, p.target, p.variable, p.init.kind, p.init.of)
          for p in c.projections if p.name.startswith("B")}
    assert fb == {"B1": ("h2", "h1", "eps", "transpose_of", "W2"),
                  "B2": ("out", "h2", "eps", "transpose_of", "W3")}
    assert c.readout == ("out", "tr")
    with pytest.raises(ValueError, match="window"):
        spiking_pc([6, 5, 3], window=4)


@pytest.mark.parametrize("two_rail", [True, False])
def test_spiking_pc_is_neuron_local_without_weight_transport(two_rail):
    c = spiking_pc([6, 5, 4, 3], window=12, two_rail=two_rail)
    report = locality_report(c)
    assert {r.projection for r in report} == {"W1", "W2", "W3", "b1", "b2", "b3", "B1", "B2"}
    err = ("en", "ep") if two_rail else ("eps",)
    for r in report:
        assert r.level == "neuron-local", r
        assert r.weight_transport is None and not r.baseline
        if r.projection.startswith("B"):   # mirrored: pre error x post trace
            assert (r.pre_vars, r.post_vars) == (err, ("tr",))
        else:
            assert (r.pre_vars, r.post_vars) == (("tr",), err)


def test_spiking_pc_feedforward_has_zero_error_and_clamps_output_while_training():
    c = spiking_pc([16, 12, 10, 4], window=16, init_scale=2.0, target_rate=0.8)
    rec = [("h1", "eps"), ("h2", "eps"), ("out", "eps"), ("out", "x"), ("out", "mu"),
           ("h1", "x"), ("h1", "mu"), ("h1", "s"), ("out", "tr"), ("out", "s")]
    sim = ReferenceSimulator(c, seed=0, record=rec)
    x, labels = small_problem(n=1)
    y = np.eye(4)[labels]
    sim.present(x, train=False)            # inference: x = mu everywhere
    m = {k: v.copy() for k, v in sim.monitor.items()}
    for k in ("h1.eps", "h2.eps", "out.eps"):
        np.testing.assert_array_equal(m[k], 0.0)
    # the prediction is the running mean of the drive; the output fires at its rate
    assert m["out.tr"][-1] == pytest.approx(m["out.s"].sum(0) / 16)
    sim.present(x, y, train=True, learn=False)
    m = sim.monitor
    np.testing.assert_allclose(m["out.x"][3:], np.broadcast_to(0.8 * y, m["out.x"][3:].shape))
    np.testing.assert_allclose(m["out.eps"][-1], 0.8 * y - m["out.mu"][-1])
    # hidden units relax away from their prediction once the output is clamped
    assert np.abs(m["h1.eps"][-1]).max() > 0
    np.testing.assert_array_equal(m["h1.eps"][:2], 0.0)


def test_spiking_pc_two_rail_equals_signed_and_feedback_stays_mirrored():
    x, labels = small_problem(n=20)
    y = np.eye(4)[labels]
    sims = [ReferenceSimulator(spiking_pc([16, 12, 10, 4], window=12, two_rail=t,
                                          init_scale=2.0, eta=0.05), seed=1)
            for t in (True, False)]
    w0 = {k: np.array(v) for k, v in sims[0].weights.items()}
    for s in sims:
        s.train(x, y, epochs=1, seed=0)
    for k in sims[0].weights:
        np.testing.assert_allclose(sims[0].weights[k], sims[1].weights[k], atol=1e-12)
    w = sims[0].weights
    assert all(not np.allclose(w[k], w0[k]) for k in ("W1", "W2", "W3", "B1", "B2"))
    # no weight transport, yet B_l == W_{l+1}^T throughout (same factors, mirrored)
    np.testing.assert_allclose(w["B1"], w["W2"].T, atol=1e-12)
    np.testing.assert_allclose(w["B2"], w["W3"].T, atol=1e-12)


def test_spiking_pc_learns_above_chance_quickly():
    x, labels = small_problem(n=240)
    xt, lt = small_problem(n=200, seed=0)[0][120:], small_problem(n=200, seed=0)[1][120:]
    sim = ReferenceSimulator(spiking_pc([16, 24, 4], window=16, eta=0.02), seed=0)
    before = sim.evaluate(xt, lt)
    sim.train(x, np.eye(4)[labels], epochs=3, seed=0)
    after = sim.evaluate(xt, lt)
    assert after >= 0.8 > before or after >= 0.9, (before, after)


def test_experiment_smoke(tmp_path):
    from neuro_pc.experiments import run_experiment
    from neuro_pc.experiments.spiking import circuits

    path = "experiments/spiking_fa_digits.toml"
    overrides = {"train.epochs": 1, "train.seeds": [0], "model.hidden": [16],
                 "model.window": 10, "model.rules": ["fa", "dfa", "pc"], "baseline.epochs": 1}
    run_dir, outcome = run_experiment(path, out_dir=tmp_path, progress=False,
                                      overrides=overrides)
    r = outcome.results
    assert set(r["rules"]) == {"fa", "dfa", "pc"}
    assert r["rules"]["fa"]["test_accuracy_mean"] > 0.3
    assert r["rules"]["pc"]["test_accuracy_mean"] > 0.3
    assert r["rules"]["fa"]["runs"][0]["spikes_per_sample"]["total"] > 0
    assert r["baseline"]["runs"][0]["test_accuracy"] > 0.3
    assert (run_dir / "results.json").exists()
    if outcome.figures:   # one raster per spiking rule
        for rule in ("fa", "dfa", "pc"):
            assert (run_dir / f"raster_{rule}.png").exists()
    from neuro_pc.experiments import load_config

    cs = circuits(load_config(path))
    assert list(cs) == ["spiking_fa", "spiking_pc"]
    for c in cs.values():
        assert all(rep.level == "neuron-local" for rep in locality_report(c))


# --------------------------------------------------------------------------- cross-backend
def _other_backend(name, circuit, **options):
    """``circuit`` compiled for ``name`` (skipped only when the backend is not
    installed; a compile error fails: what a backend cannot run is declared in
    neuro_pc.backends.support and held by tests/conformance)."""
    pytest.importorskip(f"neuro_pc.backends.{name}", exc_type=ImportError)
    from neuro_pc.backends import compile

    return compile(circuit, backend=name, seed=0, **options)


BACKEND_OPTIONS = [("brian2", {"target": "numpy"}), ("lava", {"tag": "floating_pt"})]


@pytest.mark.slow
@pytest.mark.parametrize("backend,options", BACKEND_OPTIONS, ids=[b for b, _ in BACKEND_OPTIONS])
@pytest.mark.parametrize("name", sorted(shipped_spiking_circuits()))
def test_spike_trains_equal_reference(backend, options, name):
    """Same seed, same deterministic inputs: identical spikes at every step
    (needs the backend to accept ``record=`` and fill ``monitor`` like the reference)."""
    circuit = shipped_spiking_circuits()[name]
    spikes = spike_variables(circuit)
    other = _other_backend(backend, circuit, record=spikes, **options)
    ref = ReferenceSimulator(circuit, seed=0, record=spikes)
    x, labels = small_problem(n=3, n_in=circuit.streams["x"], k=circuit.streams["y"])
    for i in range(3):
        ref.present(x[i:i + 1], train=False)
        other.present(x[i:i + 1], train=False)
        for p, v in spikes:
            np.testing.assert_array_equal(np.asarray(other.monitor[f"{p}.{v}"]).reshape(
                ref.monitor[f"{p}.{v}"].shape), ref.monitor[f"{p}.{v}"], err_msg=f"{p}.{v}")


@pytest.mark.slow
@pytest.mark.parametrize("backend,options", BACKEND_OPTIONS, ids=[b for b, _ in BACKEND_OPTIONS])
@pytest.mark.parametrize("name", sorted(shipped_spiking_circuits()))
def test_end_of_window_state_equals_reference(backend, options, name):
    """After each presentation every state variable (membranes, spikes, traces,
    errors) equals the reference's; exact for spikes and spike counts."""
    circuit = shipped_spiking_circuits()[name]
    other = _other_backend(backend, circuit, **options)
    ref = ReferenceSimulator(circuit, seed=0)
    x, labels = small_problem(n=3, n_in=circuit.streams["x"], k=circuit.streams["y"])
    y = np.eye(circuit.streams["y"])[labels]
    for i in range(3):
        ref.present(x[i:i + 1], y[i:i + 1], train=True, learn=False)
        other.present(x[i:i + 1], y[i:i + 1], train=True, learn=False)
        for k, v in ref.state.items():
            got = np.asarray(other.state[k]).reshape(v.shape)
            if k.endswith(".s"):
                np.testing.assert_array_equal(got, v, err_msg=k)
            else:
                np.testing.assert_allclose(got, v, rtol=1e-9, atol=1e-12, err_msg=k)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(shipped_spiking_circuits()))
def test_lava_fixed_pt_equals_quantized_reference(name):
    """Inference in Loihi 2 integer arithmetic: Lava fixed_pt and the quantised
    reference give the same readouts and end-of-window state, bit for bit."""
    quantized = pytest.importorskip("neuro_pc.backends.reference.quantized")
    circuit = shipped_spiking_circuits()[name]
    from neuro_pc.backends.support import unsupported
    from neuro_pc.models.conformance import FEATURES

    if unsupported("lava-fixed_pt", FEATURES[name][1]):   # declared, with its reason
        with pytest.raises((ValueError, NotImplementedError)):
            quantized.QuantizedReferenceSimulator(circuit, seed=0)
        return
    q = quantized.QuantizedReferenceSimulator(circuit, seed=0)
    other = _other_backend("lava", circuit, tag="fixed_pt")
    x, _ = small_problem(n=4, n_in=circuit.streams["x"], k=circuit.streams["y"])
    for i in range(4):
        expected = q.present(x[i:i + 1], None, train=False)
        np.testing.assert_array_equal(other.present(x[i:i + 1], None, train=False), expected)
        if isinstance(getattr(other, "qstate", None), dict):
            for k, v in q.qstate.items():
                np.testing.assert_array_equal(np.asarray(other.qstate[k]).reshape(v.shape), v,
                                              err_msg=k)


def test_trace_without_window_reset_is_a_plain_loihi_trace():
    tr = Trace(decay=0.5, impulse=1.0, window_reset=False)
    assert tr.statement() == "tr = tr * tr_decay + tr_imp * s"
    c = spiking_mlp([4, 3, 2], window=8, trace=tr)
    from hardware_targets.expressibility import spike_trace

    for pop in ("x", "h1", "out"):
        got, why = spike_trace(c, pop, "tr")
        assert why == "" and (got.spike, got.decay, got.impulse, got.window_reset) == \
            ("s", 0.5, 1.0, False), pop


def test_experiment_batched_mode_is_the_reference_batched_training(tmp_path):
    """``train.batch_size``/``dtype`` reach the reference's batched training: the
    experiment's accuracy equals a batched float32 ReferenceSimulator trained by
    hand on the same data; another backend refuses them before training."""
    from neuro_pc.experiments import run_experiment
    from neuro_pc.experiments.config import ConfigError
    from neuro_pc.experiments.spiking import build, _data
    from neuro_pc.experiments import load_config

    path = "experiments/spiking_fa_digits.toml"
    overrides = {"train.epochs": 1, "train.seeds": [0], "model.hidden": [16],
                 "model.window": 10, "model.rules": ["fa"], "baseline.enabled": False,
                 "train.batch_size": 8, "train.dtype": "float32"}
    _, outcome = run_experiment(path, out_dir=tmp_path, progress=False, overrides=overrides)
    cfg = load_config(path, overrides=overrides)
    data = _data(cfg, 0)
    circuit = build(cfg, [data.n_features, 16, data.n_classes], "fa")
    sim = ReferenceSimulator(circuit, seed=0, dtype="float32")
    sim.train(data.x_train, data.one_hot(data.y_train), epochs=1, seed=0, batch_size=8)
    assert outcome.results["rules"]["fa"]["test_accuracy_mean"] == \
        sim.evaluate(data.x_test, data.y_test)
    assert sim.weights["W1"].dtype == np.float32
    with pytest.raises(ConfigError, match="train.batch_size.*batched mode"):
        run_experiment(path, backend="brian2", out_dir=tmp_path, progress=False,
                       overrides=overrides)


def test_experiment_eta_decay_is_one_circuit_per_epoch(tmp_path):
    """``train.eta_decay``: epoch e trains at ``eta * decay**e``, the weights carried
    over. Equal to two hand-built epochs (the second circuit at half the rate);
    a decay of 1e-9 freezes learning after the first epoch."""
    from neuro_pc.experiments import load_config, run_experiment
    from neuro_pc.experiments.spiking import _data, build
    from neuro_pc.experiments.training import epoch_seed

    path = "experiments/spiking_fa_digits.toml"
    overrides = {"train.epochs": 2, "train.seeds": [0], "model.hidden": [16],
                 "model.window": 10, "model.rules": ["fa"], "baseline.enabled": False,
                 "train.batch_size": 8, "train.dtype": "float32", "train.eta_decay": 0.5}
    _, outcome = run_experiment(path, out_dir=tmp_path, progress=False, overrides=overrides)
    cfg = load_config(path, overrides=overrides)
    data = _data(cfg, 0)
    sizes = [data.n_features, 16, data.n_classes]
    x, y = data.x_train, data.one_hot(data.y_train)
    first = ReferenceSimulator(build(cfg, sizes, "fa"), seed=0, dtype="float32")
    first.train(x, y, epochs=1, seed=epoch_seed(0, 0), batch_size=8)
    second = ReferenceSimulator(build(cfg, sizes, "fa", 0.5), dict(first.weights), seed=0,
                                dtype="float32")
    second.train(x, y, epochs=1, seed=epoch_seed(0, 1), batch_size=8)
    curve = outcome.results["rules"]["fa"]["runs"][0]["curve"]
    assert curve == [first.evaluate(data.x_test, data.y_test),
                     second.evaluate(data.x_test, data.y_test)]
    frozen = run_experiment(path, out_dir=tmp_path, progress=False,
                            overrides={**overrides, "train.eta_decay": 1e-9})[1]
    curve = frozen.results["rules"]["fa"]["runs"][0]["curve"]
    assert curve[0] == curve[1]


def test_experiment_validation_holds_random_training_samples_out(tmp_path):
    """``data.validation = N``: N training samples drawn at random (the same for
    every seed) become the evaluation set, the rest train; the summary and the
    results say the test set was not used; too many is a ConfigError."""
    from neuro_pc.experiments import load_config, run_experiment
    from neuro_pc.experiments.config import ConfigError
    from neuro_pc.experiments.spiking import _data

    path = "experiments/spiking_fa_digits.toml"
    overrides = {"train.epochs": 1, "train.seeds": [0], "model.hidden": [8],
                 "model.window": 8, "model.rules": ["fa"], "baseline.enabled": False,
                 "data.validation": 200}
    full = _data(load_config(path), 0)
    val = _data(load_config(path, overrides=overrides), 0)
    perm = np.random.default_rng(0).permutation(len(full.y_train))
    np.testing.assert_array_equal(val.x_test, full.x_train[np.sort(perm[:200])])
    np.testing.assert_array_equal(val.y_train, full.y_train[np.sort(perm[200:])])
    assert np.ptp(np.sort(perm[:200])) > len(full.y_train) // 2   # spread, not a block
    _, outcome = run_experiment(path, out_dir=tmp_path, progress=False, overrides=overrides)
    assert outcome.results["evaluated_on"].startswith("validation: 200 training samples")
    assert "validation accuracy" in outcome.summary and "test accuracy" not in outcome.summary
    with pytest.raises(ConfigError, match="data.validation: 5000 samples would leave none"):
        _data(load_config(path, overrides={**overrides, "data.validation": 5000}), 0)
