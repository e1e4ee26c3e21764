"""Hardening (issue 12), class 4: non-finite numbers are never silent.

NaN / inf in data is a ValueError naming the array and the first bad index; a
diverging run stops with a NonFiniteError naming the projection, the epoch and
the learning rate, on every backend; results files are strict JSON.
"""
import json

import numpy as np
import pytest

from neuro_pc.backends import NonFiniteError, compile
from neuro_pc.data import Dataset, load_dataset
from neuro_pc.experiments import Outcome, write_run
from neuro_pc.experiments.runs import dumps
from neuro_pc.models import mlp

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")   # numpy's overflow notes


def _xy(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 4)), np.eye(2)[np.arange(n) % 2]


# -- data --------------------------------------------------------------------------------------

def test_nan_in_a_dataset_names_the_array_and_index():
    x, y = np.zeros((5, 3)), np.arange(5) % 2
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"toy: x_train holds NaN at index \(3, 1\) \(first of "
                                         r"1 non-finite value\)") as info:
        Dataset(bad, y, x, y, n_classes=2, name="toy")
    assert isinstance(info.value, NonFiniteError) and info.value.index == (3, 1)
    bad = x.copy()
    bad[0, 2] = -np.inf
    with pytest.raises(ValueError, match=r"toy: x_test holds -inf at index \(0, 2\)"):
        Dataset(x, y, bad, y, n_classes=2, name="toy")
    labels = np.array([0.0, 1.0, np.nan, 1.0, 0.0])
    with pytest.raises(ValueError, match=r"toy: y_train holds NaN at index 2"):
        Dataset(x, labels, x, y, n_classes=2, name="toy")


def test_nan_in_an_mnist_npz_names_the_file_and_key(tmp_path):
    x = np.zeros((4, 28, 28))
    x[1, 2, 3] = np.nan
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x, y_train=np.arange(4), x_test=np.zeros((2, 28, 28)),
             y_test=np.arange(2))
    with pytest.raises(ValueError, match=rf"{path}\[x_train\] holds NaN at index \(1, 2, 3\)"):
        load_dataset(str(path))


def test_corrupt_mnist_files_are_named(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match=r"bad.npz is not a readable .npz archive"):
        load_dataset(str(tmp_path / "bad.npz"))
    idx = tmp_path / "idx"
    idx.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (idx / (name + ".gz")).write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz is not a readable gzip "
                                         r"file"):
        load_dataset(f"mnist:{idx}")


# -- simulator inputs ----------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["reference", "brian2", "lava"])
def test_nan_in_training_or_prediction_inputs(backend):
    if backend == "lava":
        pytest.importorskip("neuro_pc.backends.lava", exc_type=ImportError,
                            reason="needs lava-nc 0.10 on Python 3.10 (the lava extra)")
    sim = compile(mlp([4, 3, 2], rule="fa"), backend=backend, seed=0)
    x, y = _xy()
    bad_x = x.copy()
    bad_x[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"x \(training inputs\) holds NaN at index \(7, 1\)"):
        sim.train(bad_x, y)
    bad_y = y.copy()
    bad_y[4, 0] = np.inf
    with pytest.raises(ValueError, match=r"y \(training targets\) holds inf at index \(4, 0\)"):
        sim.train(x, bad_y)
    with pytest.raises(ValueError, match=r"x \(inputs\) holds NaN at index \(7, 1\)"):
        sim.predict(bad_x)
    with pytest.raises(ValueError, match=r"labels holds NaN at index 3"):
        sim.evaluate(x, np.array([0, 1, 0, np.nan] + [0] * 16))


def test_non_finite_initial_weights_are_refused():
    c = mlp([4, 3, 2], rule="fa")
    w = c.init_weights(0)
    w["W2"][1, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"the given weight matrix of projection 'W2' holds "
                                             r"NaN at index \(1, 0\)"):
        compile(c, weights=w)


# -- divergence during training ------------------------------------------------------------------

def test_a_diverging_learning_rate_names_projection_epoch_and_eta():
    x, y = _xy()
    sim = compile(mlp([4, 3, 2], rule="fa", eta=1e8), seed=0)
    with pytest.raises(NonFiniteError) as info:
        sim.train(x, y, epochs=3)
    err = info.value
    assert err.projection == "W1" and err.epoch in (1, 2)
    assert str(err).startswith(f"training diverged: the weights of projection 'W1' hold ")
    assert f"after epoch {err.epoch}/3, circuit 'fa_4-3-2' on the reference backend; " \
           "learning rate too large? eta=1e+08 (the rule of 'W1')" in str(err)


def test_batched_training_is_checked_too():
    x, y = _xy(64)
    sim = compile(mlp([4, 3, 2], rule="bp", eta=1e12), seed=0)
    with pytest.raises(NonFiniteError, match="projection 'W1'.*eta=1e\\+12"):
        sim.train(x, y, epochs=4, batch_size=16)


@pytest.mark.parametrize("backend", ["brian2", "lava"])
def test_brian2_and_lava_training_is_checked_each_epoch(backend):
    if backend == "lava":
        pytest.importorskip("neuro_pc.backends.lava", exc_type=ImportError,
                            reason="needs lava-nc 0.10 on Python 3.10 (the lava extra)")
    x, y = _xy()
    seen = []
    sim = compile(mlp([4, 3, 2], rule="fa", eta=1e8), backend=backend, seed=0)
    with pytest.raises(NonFiniteError) as info:
        sim.train(x, y, epochs=3, callback=lambda e, s: seen.append(e))
    assert info.value.projection == "W1"
    assert seen == list(range(info.value.epoch - 1))     # stopped before that epoch's callback
    assert f"on the {backend} backend; learning rate too large? eta=1e+08" in str(info.value)
    # without a callback all epochs run in one simulator run, checked at its end
    sim = compile(mlp([4, 3, 2], rule="fa", eta=1e8), backend=backend, seed=0)
    name = {"brian2": "Brian2", "lava": "Lava"}[backend]
    with pytest.raises(NonFiniteError, match=rf"after epoch 3/3 \(all epochs in one {name} "
                                             r"run\)"):
        sim.train(x, y, epochs=3)


def test_mpc_training_checks_the_weights_each_epoch():
    from neuro_pc.data import load_digits
    from neuro_pc.experiments.mpc import train_mpc
    from neuro_pc.models.glimpse import GlimpseGeometry, GlimpseSensor
    from neuro_pc.models.mpc import mpc

    geometry = GlimpseGeometry.digits()
    sim = compile(mpc(geometry, hidden=(4, 3), k=2, relax_steps=2), seed=0)
    name = next(p.name for p in sim.circuit.plastic)
    sim.weights[name][0, 0] = np.inf        # as if the last batch had diverged
    with pytest.raises(NonFiniteError,     # (the unit-norm transform makes the inf a NaN)
                       match=rf"projection '{name}' hold (inf|NaN) .* after epoch 1/2"):
        train_mpc(sim, GlimpseSensor(geometry), load_digits().x_train[:40], epochs=2,
                  batch_size=20, saccades=1, seed=0)


def test_an_overflowing_readout_with_finite_weights():
    sim = compile(mlp([4, 3, 2], rule="fa", act="linear"), seed=0)
    with pytest.raises(NonFiniteError, match=r"readout of circuit 'fa_4-3-2' \(reference\) is "
                                             r"(NaN|inf|-inf) for sample 0 .* although every "
                                             r"weight is finite"):
        sim.predict(np.full((3, 4), 1e308))


# -- results files are strict JSON -----------------------------------------------------------------

def _strict(text):
    def reject(token):
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(text, parse_constant=reject)


def test_results_with_nan_are_valid_json(tmp_path):
    results = {"a": float("nan"), "b": np.float64("inf"), "c": np.array([1.0, np.nan]),
               "d": {"e": [-np.inf, 2]}, "f": (np.int64(3), np.float32(0.5))}
    run = write_run(tmp_path, "x", Outcome(results=results, summary="s"))
    assert _strict((run / "results.json").read_text()) == {
        "a": None, "b": None, "c": [1.0, None], "d": {"e": [None, 2]}, "f": [3, 0.5]}
    assert "NaN" not in dumps(results) and "Infinity" not in dumps(results)
