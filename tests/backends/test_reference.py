"""The reference backend executes the semantics of docs/semantics.md."""
import dataclasses

import numpy as np
import pytest

from neuro_pc.backends import compile
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.ir import Circuit, Init, Population, Projection, Rule, Schedule
from neuro_pc.models import mlp


def chain(window=4):
    """x -> a -> b, identity weights ×2: each hop takes one step."""
    pops = (Population("x", 1, ("r",), streams={"r": "x"}),
            Population("a", 1, ("r",), ports=("ff",), update=("r = ff + 0.5 * r",)),
            Population("b", 1, ("r",), ports=("ff",), update=("r = ff",)))
    projs = (Projection("xa", "x", "a", "ff", init=Init("constant", 2.0)),
             Projection("ab", "a", "b", "ff", init=Init("constant", 2.0)))
    return Circuit("chain", pops, projs, Schedule(window), streams={"x": 1})


def test_one_step_delay_per_projection():
    """Hand-computed: x=1 from step 0. a(t) = 2 x(t-1) + 0.5 a(t-1):
    a = 0, 2, 3, 3.5; b(t) = 2 a(t-1): b = 0, 0, 4, 6."""
    sim = ReferenceSimulator(chain(), record=[("a", "r"), ("b", "r")])
    sim.present(np.ones((1, 1)), train=False)
    np.testing.assert_array_equal(sim.monitor["a.r"][:, 0, 0], [0, 2, 3, 3.5])
    np.testing.assert_array_equal(sim.monitor["b.r"][:, 0, 0], [0, 0, 4, 6])


def test_state_carries_over_between_windows():
    sim = ReferenceSimulator(chain(window=2), record=[("a", "r")])
    sim.present(np.ones((1, 1)), train=False)
    sim.present(np.ones((1, 1)), train=False)
    np.testing.assert_array_equal(sim.monitor["a.r"][:, 0, 0], [3, 3.5])


def test_batched_update_is_mean_of_per_sample_updates():
    c = mlp([5, 4, 3], rule="fa", eta=0.1)
    rng = np.random.default_rng(0)
    x, y = rng.random((6, 5)), np.eye(3)[rng.integers(3, size=6)]
    batched = ReferenceSimulator(c, seed=2).compute_updates(x, y)
    singles = [ReferenceSimulator(c, seed=2).compute_updates(x[i:i + 1], y[i:i + 1])
               for i in range(6)]
    for k in batched:
        np.testing.assert_allclose(batched[k], np.mean([s[k] for s in singles], axis=0),
                                   atol=1e-14)


def test_compute_updates_leaves_weights_unchanged_and_matches_training():
    c = mlp([5, 4, 3], rule="dfa", eta=0.1)
    sim = ReferenceSimulator(c, seed=1)
    w0 = {k: v.copy() for k, v in sim.weights.items()}
    x, y = np.full((1, 5), 0.3), np.eye(3)[[0]]
    dw = sim.compute_updates(x, y)
    assert all(np.array_equal(sim.weights[k], w0[k]) for k in w0)
    sim.present(x, y, train=True)
    np.testing.assert_allclose(sim.weights["W1"] - w0["W1"], dw["W1"], atol=1e-15)


def test_inference_does_not_learn_and_predicts():
    c = mlp([5, 4, 3], rule="fa")
    sim = ReferenceSimulator(c, seed=0)
    w0 = sim.weights["W1"].copy()
    labels = sim.predict(np.random.default_rng(0).random((10, 5)))
    assert labels.shape == (10,) and np.array_equal(sim.weights["W1"], w0)


def test_sparse_mask_survives_training():
    c = mlp([6, 5, 3], rule="fa")
    w1 = c.projection("W1")
    c = dataclasses.replace(c, projections=tuple(
        dataclasses.replace(p, connectivity=0.5) if p is w1 else p for p in c.projections))
    sim = ReferenceSimulator(c, seed=0)
    zero = sim.masks["W1"] == 0
    assert zero.any() and np.all(sim.weights["W1"][zero] == 0)
    rng = np.random.default_rng(0)
    sim.train(rng.random((20, 6)), np.eye(3)[rng.integers(3, size=20)], epochs=1)
    assert np.all(sim.weights["W1"][zero] == 0)


def test_unit_columns_transform():
    pops = (Population("x", 3, ("r",), streams={"r": "x"}),
            Population("h", 2, ("r",), ports=("ff",), update=("r = ff",)))
    rule = Rule("dw = eta * post.r * pre.r", {"eta": 0.5}, transforms=("unit_columns",))
    c = Circuit("u", pops, (Projection("W", "x", "h", "ff", rule=rule),), Schedule(2),
                streams={"x": 3})
    sim = ReferenceSimulator(c, seed=0)
    sim.present(np.ones((1, 3)))
    np.testing.assert_allclose(np.linalg.norm(sim.weights["W"], axis=0), 1.0)


def test_unit_rows_transform():
    """After the window's update every row of W is rescaled to unit norm; a zero
    row (a target unit that never fires, so its dW row is 0) stays zero, no NaN."""
    pops = (Population("x", 3, ("r",), streams={"r": "x"}),
            Population("h", 3, ("r",), ports=("ff",), update=("r = ff",)))
    w0 = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 1.0], [0.0, 0.0, 0.0]])

    def run(transforms):
        rule = Rule("dw = eta * post.r * pre.r", {"eta": 0.5}, transforms=transforms)
        c = Circuit("u", pops, (Projection("W", "x", "h", "ff", rule=rule),), Schedule(3),
                    streams={"x": 3})
        sim = ReferenceSimulator(c, {"W": w0.copy()}, seed=0)
        sim.present(np.array([[1.0, 0.5, -0.25]]))
        return sim.weights["W"]

    plain, w = run(()), run(("unit_rows",))
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(np.linalg.norm(w[:2], axis=1), 1.0)
    np.testing.assert_array_equal(w[2], 0.0)
    # the same update as without the transform, each row then divided by its norm
    np.testing.assert_allclose(w[:2], plain[:2] / np.linalg.norm(plain[:2], axis=1,
                                                                 keepdims=True))
    assert not np.allclose(np.linalg.norm(w, axis=0), 1.0)   # rows, not columns
    # after columns, rows: the transforms apply in the order they are listed
    both = run(("unit_columns", "unit_rows"))
    np.testing.assert_allclose(np.linalg.norm(both[:2], axis=1), 1.0)


def test_bad_inputs():
    c = mlp([5, 4, 3], rule="fa")
    sim = ReferenceSimulator(c, seed=0)
    with pytest.raises(ValueError, match="stream 'x'.*5 wide.*4 columns"):
        sim.present(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="x has 3 samples but y has 2"):
        sim.train(np.zeros((3, 5)), np.zeros((2, 3)))
    with pytest.raises(Exception, match=r"'W1' have shape \(2, 2\)"):
        ReferenceSimulator(c, {"W1": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="unknown backend 'nest'"):
        compile(c, backend="nest")
    with pytest.raises(ValueError, match="cannot record h1.zz"):
        ReferenceSimulator(c, record=[("h1", "zz")])


def test_artifact_reload_gives_the_same_predictions(tmp_path):
    c = mlp([5, 4, 3], rule="fa")
    sim = ReferenceSimulator(c, seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((30, 5))
    sim.train(x, np.eye(3)[rng.integers(3, size=30)], epochs=1)
    path = sim.save(tmp_path / "fa.npz", accuracy=0.5)
    from neuro_pc.ir import load_artifact

    again = ReferenceSimulator.from_artifact(load_artifact(path))
    assert np.array_equal(again.predict(x), sim.predict(x))
