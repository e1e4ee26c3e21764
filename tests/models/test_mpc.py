"""The MPC circuit builder (neuro_pc.models.mpc) on the reference backend,
and its equivalence on Brian2 / Lava floating_pt where they run it."""
import numpy as np
import pytest

from neuro_pc.analysis.probe import label_subset, linear_probe
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.ir import Circuit
from neuro_pc.models.glimpse import GlimpseGeometry, GlimpseSensor
from neuro_pc.models.mpc import energy, energy_grad, latent_states, mpc, topology_pairs
from neuro_pc.rules import circuit_level, locality_report

#: a small geometry: 1 fovea, 1 periphery, pooled to 2x2 (2 streams, x is 10 wide)
TINY = GlimpseGeometry(image=8, fovea=4, n_fovea=1, para=6, n_para=0, periph=8, pool=2,
                       margin=2)


def _images(n, seed=0):
    return np.random.default_rng(seed).random((n, 64))


def _glimpses(geometry, n, seed=0):
    sensor = GlimpseSensor(geometry)
    return sensor.glimpse(_images(n, seed), sensor.saccades(n, 1, seed)[:, 0])


def small(**kw):
    kw = {**dict(hidden=(12, 8), k=3, relax_steps=10), **kw}
    return mpc(GlimpseGeometry.digits(), **kw)


def test_builds_validates_and_round_trips():
    c = small()
    assert c.validate() is c
    assert Circuit.from_json(c.to_json()) == c
    L = 2
    assert c.schedule.window == L + 3 + 10
    streams = c.metadata["streams"]
    assert streams == ["f0", "f1", "f2", "f3", "p0", "q0"]
    assert len(c.metadata["pairs"]) == len(topology_pairs(streams, [1, 1, 1, 1, 0, 0], "st2"))


def test_topologies():
    s, fov = ["f0", "f1", "p0", "q0"], [True, True, False, False]
    assert len(topology_pairs(s, fov, "st1")) == 16
    assert topology_pairs(s, fov, "st2") == [("f0", "f1"), ("f1", "f0"), ("p0", "f0"),
                                              ("p0", "f1"), ("p0", "p0"), ("q0", "f0"),
                                              ("q0", "f1"), ("q0", "q0")]
    assert ("f0", "f0") in topology_pairs(s, fov, "st4")
    with pytest.raises(ValueError, match="topology"):
        topology_pairs(s, fov, "st9")


def test_selection_weights_route_each_stream():
    c = small()
    sim = ReferenceSimulator(c, c.init_weights(0))
    x = _glimpses(GlimpseGeometry.digits(), 5)
    sim.present(x, train=False)
    sensor = GlimpseSensor(GlimpseGeometry.digits())
    streams, a = sensor.split(x)
    for name, g in zip(c.metadata["streams"], streams):
        assert np.allclose(sim.state[f"g_{name}.r"], g)
    assert np.allclose(sim.state["a.r"], a)


def test_kwta_keeps_exactly_k():
    c = small(k=3)
    sim = ReferenceSimulator(c, c.init_weights(1))
    sim.present(_glimpses(GlimpseGeometry.digits(), 16, 1), train=False)
    for l in (1, 2):
        for s in c.metadata["streams"]:
            phi = sim.state[f"z{l}_{s}.phi"]
            z = sim.state[f"z{l}_{s}.z"]
            assert np.all((phi != 0).sum(axis=1) == 3)
            kept = np.sort(z, axis=1)[:, -3:]
            assert np.allclose(np.sort(np.where(phi != 0, z, -np.inf), axis=1)[:, -3:], kept)
            assert np.array_equal(sim.state[f"z{l}_{s}.dphi"], (phi != 0).astype(float))


def test_unit_column_norms_after_a_step():
    c = small()
    sim = ReferenceSimulator(c, c.init_weights(2))
    before = {k: v.copy() for k, v in sim.weights.items()}
    sim.present(_glimpses(GlimpseGeometry.digits(), 8, 2), train=True)
    checked = 0
    for p in c.plastic:
        if "unit_columns" in p.rule.transforms:
            assert p.name[0] in "WRA"
            assert not np.allclose(sim.weights[p.name], before[p.name])
            assert np.allclose(np.linalg.norm(sim.weights[p.name], axis=0), 1.0)
            checked += 1
    assert checked == sum(1 for p in c.plastic if p.name[0] in "WRA")
    for p in c.projections:            # fixed wiring stays fixed
        if p.rule is None:
            assert np.array_equal(sim.weights[p.name], before[p.name])


def test_norm_axis_rows_normalises_receptive_fields_and_mirrors():
    """``norm_axis="rows"``: every target unit's incoming weights (a row of the
    (n_target, n_source) matrix) get unit norm, the learned feedback the other
    axis (it stays the exact transpose), and the initial rows have norm ~1."""
    c = small(norm_axis="rows")
    assert c.metadata["norm_axis"] == "rows"
    w0 = c.init_weights(4)
    for name in ("W1_f0", "W2_f0", "R1_f0_f1", "A1_f0_f1"):
        rows = np.linalg.norm(w0[name], axis=1)
        assert abs(rows.mean() - 1.0) < 0.35, (name, rows.mean())   # N(0, 1/n_source)
    sim = ReferenceSimulator(c, w0)
    for seed in range(2):
        sim.present(_glimpses(GlimpseGeometry.digits(), 8, seed), train=True)
    by_kind = {}
    for p in c.plastic:
        w = sim.weights[p.name]
        if p.name[0] in "WRA":
            assert p.rule.transforms == ("unit_rows",), p.name
            np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, atol=1e-9)
            assert not np.allclose(np.linalg.norm(w, axis=0), 1.0, atol=1e-3), p.name
        elif p.init.kind == "transpose_of":
            assert p.rule.transforms == ("unit_columns",), p.name
            np.testing.assert_allclose(w, sim.weights[p.init.of].T, rtol=0, atol=1e-10)
        by_kind[p.name[0]] = by_kind.get(p.name[0], 0) + 1
    assert set(by_kind) == {"W", "R", "A", "E"}
    with pytest.raises(ValueError, match="norm_axis"):
        small(norm_axis="both")
    # the default ("columns") draws N(0, 1/n_target): columns of norm ~1 instead
    wc = small().init_weights(4)
    for name in ("W1_f0", "W2_f0", "R1_f0_f1", "A1_f0_f1"):
        assert abs(np.linalg.norm(wc[name], axis=0).mean() - 1.0) < 0.35, name


@pytest.mark.parametrize("target_term", [True, False])
def test_energy_gradient_matches_finite_differences(target_term):
    c = small(target_term=target_term, cross_precision=0.5)
    w = c.init_weights(3)
    x = _glimpses(GlimpseGeometry.digits(), 3, 3)
    rng = np.random.default_rng(3)
    z = {(l, s): rng.normal(size=(3, n)) for l, n in ((1, 12), (2, 8))
         for s in c.metadata["streams"]}
    grad = energy_grad(c, w, x, z)
    if target_term:   # with the target term it is the exact gradient of F
        for key in [(1, "f1"), (2, "q0"), (1, "p0")]:
            for i in range(z[key].shape[1]):
                zp = {k: v.copy() for k, v in z.items()}
                zm = {k: v.copy() for k, v in z.items()}
                zp[key][:, i] += 1e-6
                zm[key][:, i] -= 1e-6
                fd = (energy(c, w, x, zp) - energy(c, w, x, zm)) / 2e-6
                assert np.allclose(grad[key][:, i], fd, rtol=1e-5, atol=1e-6)
    else:             # Eq. 8 as printed misses +sum e_C for streams that are targets
        key = (1, "f1")
        zp = {k: v.copy() for k, v in z.items()}
        zm = {k: v.copy() for k, v in z.items()}
        zp[key][:, 0] += 1e-6
        zm[key][:, 0] -= 1e-6
        fd = (energy(c, w, x, zp) - energy(c, w, x, zm)) / 2e-6
        assert not np.allclose(grad[key][:, 0], fd, rtol=1e-3)


@pytest.mark.parametrize("feedback", ["learned", "tied"])
def test_energy_decreases_during_inference(feedback):
    # with the target term the E-step is gradient descent on F (the default, Eq. 8
    # as printed, holds each target fixed like a stop-gradient and descends F only
    # in the predictor's and its own bottom-up terms)
    c = small(feedback=feedback, relax_steps=30, target_term=True)
    keys = [(l, s) for l in (1, 2) for s in c.metadata["streams"]]
    sim = ReferenceSimulator(c, c.init_weights(4), record=[(f"z{l}_{s}", "z") for l, s in keys])
    x = _glimpses(GlimpseGeometry.digits(), 10, 4)
    sim.present(x, train=False)
    t0 = c.metadata["sweep_steps"]
    F = np.array([energy(c, sim.weights, x, {(l, s): sim.monitor[f"z{l}_{s}.z"][t]
                                             for l, s in keys}).mean()
                  for t in range(t0 - 1, c.schedule.window)])
    assert F[-1] < 0.7 * F[0]
    assert np.all(np.diff(F[:5]) < 0)              # descent while far from the fixed point
    # near it, the one-step delays of the loop and kwta's winner switches (F is
    # discontinuous there) leave small fluctuations
    assert np.all(np.diff(F) <= 0.02 * F[0])


def test_windows_are_independent_states_reset_by_the_sweep():
    c = small()
    w = c.init_weights(5)
    x1, x2 = _glimpses(GlimpseGeometry.digits(), 4, 5), _glimpses(GlimpseGeometry.digits(), 4, 6)
    a = ReferenceSimulator(c, w)
    a.present(x1, train=False)
    a.present(x2, train=False)
    b = ReferenceSimulator(c, w)
    b.present(x2, train=False)
    for k in a.state:
        assert np.allclose(a.state[k], b.state[k])


def test_learned_feedback_mirrors_forward_without_normalisation():
    c = small(normalize=())
    sim = ReferenceSimulator(c, c.init_weights(6))
    for seed in range(3):
        sim.present(_glimpses(GlimpseGeometry.digits(), 8, seed), train=True)
    for p in c.plastic:
        if p.init.kind == "transpose_of":
            assert np.allclose(sim.weights[p.name], sim.weights[p.init.of].T)


def test_learned_feedback_mirrors_forward_with_normalisation():
    """W, R have unit columns (the default); E, ER get unit rows, so they stay
    exactly Wᵀ, Rᵀ (without it they drift from them by a per-row scale)."""
    c = small()
    assert tuple(c.metadata["normalize"]) == ("W", "R", "A")
    w0 = c.init_weights(6)
    sim = ReferenceSimulator(c, w0)
    for seed in range(3):
        sim.present(_glimpses(GlimpseGeometry.digits(), 8, seed), train=True)
    mirrored = 0
    for p in c.plastic:
        if p.init.kind == "transpose_of":
            assert p.rule.transforms == ("unit_rows",)
            assert p.init.of[0] == ("W" if p.name.startswith("E") and p.name[1] != "R" else "R")
            assert not np.allclose(sim.weights[p.name], w0[p.name])
            np.testing.assert_allclose(sim.weights[p.name], sim.weights[p.init.of].T,
                                       rtol=0, atol=1e-10, err_msg=p.name)
            mirrored += 1
    assert mirrored == sum(1 for p in c.projections if p.name.startswith("E"))
    # only where the forward matrix is normalised, and never with tied feedback
    only_r = small(normalize=("R",))
    assert all(not p.rule.transforms for p in only_r.plastic if p.name[0] == "E"
               and p.name[1] != "R")
    assert all(p.rule.transforms == ("unit_rows",) for p in only_r.plastic
               if p.name.startswith("ER"))
    assert not any(p.name.startswith("E") for p in small(feedback="tied").plastic)


def test_locality_report_population_level_because_of_kwta():
    c = small()
    report = locality_report(c)
    assert {r.level for r in report} == {"population-level"}
    assert circuit_level(report) == "population-level"
    for r in report:
        assert r.weight_transport is None
        assert any("kwta" in reason for reason in r.reasons)
        if r.projection[0] in "WRA":
            assert "unit_columns" in r.transforms
    # with phi the identity (k = width) only the column normalisation is population-level
    c2 = small(k=100, normalize=())
    assert {r.level for r in locality_report(c2)} == {"neuron-local"}
    # the paper's tied feedback is weight transport: network-global, a marked baseline
    tied = small(feedback="tied")
    assert {r.level for r in locality_report(tied)} == {"network-global"}
    assert all(r.baseline for r in locality_report(tied))


def test_loihi2_check_names_kwta_and_the_norms_as_off_chip():
    """Issue 8: kwta and the column/row normalisations are population-level and
    the Loihi 2 check says no learning-engine rule can express them."""
    from hardware_targets.expressibility import expressibility_report

    c = small()
    report = {r.projection: r for r in expressibility_report(c, "loihi2")}
    assert report and not any(r.expressible for r in report.values())
    for name, r in report.items():
        why = " ".join(r.reasons)
        assert "kwta()" in why and "not a per-neuron trace" in why, name
        if name[0] in "WRA":
            assert "'unit_columns'" in why, name
        elif name[0] == "E":
            assert "'unit_rows'" in why, name
    # the kwta layers a rule reads through the E-step loop are one reason naming
    # three of them, not one reason each: with the target term W1_f0 reaches all 12
    # (6 streams x 2 layers); without it (default) only the foveal chain st2 makes
    # f0 -> f1 -> f2 -> f3 -> f0 (a predictor reads its target), 4 streams x 2 layers
    for target_term, n in ((True, 12), (False, 8)):
        r = locality_report(small(target_term=target_term))[0]
        assert r.projection == "W1_f0"
        assert [x for x in r.reasons if "kwta" in x] == [
            f"reads {n} populations through population-level kwta(): "
            f"'z1_f0', 'z1_f1', 'z1_f2' and {n - 3} more"]
        # the full list stays in the report (and in --json)
        assert len(r.population_reads) == n
        assert all(fns == ("kwta",) for _, fns in r.population_reads)
        assert len(r.as_dict()["population_reads"]) == n


def test_training_reduces_the_energy():
    # F is the objective of both steps only with the target term (the default E-step,
    # Eq. 8 as printed, holds the targets and is not descent on F)
    c = small(eta=0.05, target_term=True)
    sim = ReferenceSimulator(c, c.init_weights(7))
    sensor = GlimpseSensor(GlimpseGeometry.digits())
    from neuro_pc.data import load_digits

    imgs = load_digits().x_train[:200]
    x = sensor.glimpse(imgs[:100], sensor.saccades(100, 1, 99)[:, 0])

    def F():
        sim.present(x, train=False)
        return energy(c, sim.weights, x, latent_states(c, sim.state)).mean()

    before = F()
    from neuro_pc.experiments.mpc import train_mpc

    train_mpc(sim, sensor, imgs, epochs=2, batch_size=50, saccades=3, seed=0)
    assert F() < before


def test_linear_probe_and_label_subset():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 30)
    idx = label_subset(y, 100, seed=1)
    assert len(idx) == 100 and np.all(np.bincount(y[idx]) == 10)
    assert np.array_equal(idx, label_subset(y, 100, seed=1))
    assert len(label_subset(y, None)) == 300
    centres = rng.normal(size=(10, 5)) * 4
    x = centres[y] + rng.normal(size=(300, 5))
    assert linear_probe(x, y, x, y, n_labels=50) > 0.9


# equivalence with Brian2 and Lava: tests/conformance (feature 'mpc'); here one window of
# the paper's MNIST geometry

def _mnist_window():
    """The paper's MNIST geometry (6 streams of 8x8 pooled views, x 386 wide) with
    small latent layers: one glimpse of each of 2 random 28x28 images."""
    geometry = GlimpseGeometry.mnist()
    sensor = GlimpseSensor(geometry)
    imgs = np.random.default_rng(3).random((2, 28 * 28))
    x = sensor.glimpse(imgs, sensor.saccades(2, 1, 3)[:, 0])
    return mpc(geometry, hidden=(24, 12), k=5, relax_steps=3, eta=0.05), x


def _mnist_equivalence(backend, **options):
    from neuro_pc.backends import compile

    c, x = _mnist_window()
    w = c.init_weights(0)
    other = compile(c, backend=backend, weights=w, seed=0, **options)
    ref = ReferenceSimulator(c, w, seed=0)
    for row in x:                      # online: one window per sample, learning at its end
        ref.present(row[None], train=True)
    other.present(x, train=True) if backend == "lava" else [other.present(r[None], train=True)
                                                            for r in x]
    for k, v in ref.weights.items():
        assert np.allclose(other.weights[k], v, rtol=1e-6, atol=1e-9), k
    for k, v in ref.state.items():
        assert np.allclose(other.state[k], v, rtol=1e-6, atol=1e-9), k


@pytest.mark.slow
def test_mnist_geometry_window_brian2():
    pytest.importorskip("brian2")
    _mnist_equivalence("brian2", target="numpy")


@pytest.mark.slow
def test_mnist_geometry_window_lava_floating_pt():
    """The 48-process Lava network of the paper's geometry (every run stops its
    processes itself, also when it fails: LavaSimulator._run)."""
    pytest.importorskip("lava")
    _mnist_equivalence("lava", tag="floating_pt")


def test_anti_collapse_options_are_local_and_off_by_default():
    base = small()
    assert not any(p.name.startswith("D") for p in base.projections)
    assert all("v" not in p.variables for p in base.populations)
    c = small(k=100, normalize=(), homeostasis=0.1, homeo_target=0.05, decorrelation=0.5,
              decor_gain=4.0, decor_target=0.05)
    assert c.validate() is c
    assert Circuit.from_json(c.to_json()) == c
    names = {p.name for p in c.projections}
    assert {"D1_f0", "D2_q0"} <= names
    # with phi the identity and no normalisation every rule, the new ones included, is local
    assert {r.level for r in locality_report(c)} == {"neuron-local"}
    sim = ReferenceSimulator(c, c.init_weights(3))
    x = _glimpses(GlimpseGeometry.digits(), 16, 3)
    for _ in range(3):
        sim.present(x, train=True)
    z = sim.state["z1_f0.z"]
    # the lateral rule's step: dD = -eta_d (<z z^T> + D / gain) (batch mean), decays
    # towards -gain <z z^T>; one more window checks the sign and size of the step
    d0 = sim.weights["D1_f0"].copy()
    sim.present(x, train=True)
    z = sim.state["z1_f0.z"]
    step = -0.5 * (z.T @ z / len(z) + d0 / 4.0)
    assert np.allclose(sim.weights["D1_f0"] - d0, step, atol=1e-9)
    assert np.all(np.diag(sim.weights["D1_f0"]) < 0)
    # the homeostatic variable tracks the unit's running second moment
    assert np.all(sim.state["z1_f0.v"] > 0)
