"""The MPC experiment (neuro_pc.experiments.mpc): a tiny end-to-end run and its baselines."""
import json

import numpy as np
import pytest

from neuro_pc.experiments import run_experiment
from neuro_pc.experiments.mpc import kmeans_encoder
from neuro_pc.models.glimpse import GlimpseGeometry, GlimpseSensor

CONFIG = "experiments/mpc_digits.toml"
TINY = {"model.hidden": [8, 8], "model.k": 4, "model.relax_steps": 4, "train.epochs": 1,
        "train.seeds": [0], "train.saccades": 2, "probe.labels": [100, "all"],
        "baselines.methods": ["pixels", "random", "kmeans"],
        "probe.decoder": ["pixels", "mpc"], "probe.decoder_hidden": 256,
        "probe.decoder_epochs": 200}


def test_kmeans_encoder_shapes_and_triangle_code():
    from neuro_pc.data import load_digits

    sensor = GlimpseSensor(GlimpseGeometry.digits())
    imgs = load_digits().x_train[:120]
    enc = kmeans_encoder(sensor, imgs, n_clusters=5, saccades=2, seed=0)
    fix = sensor.fixed_saccades(len(imgs), 3, 1)
    f = enc(imgs, fix)
    assert f.shape == (120, 3 * 6 * 5)          # K glimpses x V streams x clusters
    assert np.all(f >= 0)
    # the triangle code is zero for centroids farther than the mean distance:
    # never all of a stream's codes are positive, and some are
    per = f.reshape(120, 3, 6, 5)
    assert np.all((per > 0).sum(-1) < 5) and np.any(per > 0)
    again = kmeans_encoder(sensor, imgs, n_clusters=5, saccades=2, seed=0)(imgs, fix)
    assert np.array_equal(f, again)             # deterministic for a seed


def test_tiny_mpc_experiment_writes_every_method(tmp_path):
    run_dir, outcome = run_experiment(CONFIG, out_dir=tmp_path, progress=False, overrides=TINY)
    res = json.loads((run_dir / "results.json").read_text())
    assert set(res["methods"]) == {"pixels", "random", "kmeans", "mpc"}
    for method, per in res["methods"].items():
        assert set(per) == {"100", "all"}
        assert per["all"]["mean"] > 0.8, method   # chance is 0.1; every encoder keeps the digit
    assert res["extra"]["feature_dim"] == 2 * 6 * 8
    # Dec-MSE: decoding the image from its own pixels beats always guessing the mean image
    d = res["decoder"]
    assert set(d) == {"pixels", "mpc", "mean image"}
    assert d["pixels"]["mean"] < 0.5 * d["mean image"]["mean"]
    assert 0 < d["mpc"]["mean"] < d["mean image"]["mean"]
    assert "kmeans" in outcome.summary
    # below "all", a seed's score is the mean over the label draws seed + 1000 d
    from neuro_pc.analysis.probe import linear_probe
    from neuro_pc.data import load_dataset

    data = load_dataset("digits", seed=0)
    xy = (data.x_train, data.y_train, data.x_test, data.y_test)
    want = np.mean([linear_probe(*xy, 100, 1000 * k) for k in range(3)])
    assert res["methods"]["pixels"]["100"]["runs"] == [pytest.approx(want, abs=1e-12)]
    assert res["methods"]["pixels"]["all"]["runs"] == [
        pytest.approx(linear_probe(*xy, None, 0), abs=1e-12)]


def test_bad_baseline_or_draws_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"baselines.methods\[0\]: unknown 'pca'"):
        run_experiment(CONFIG, out_dir=tmp_path, progress=False,
                       overrides={**TINY, "baselines.methods": ["pca"]})
    with pytest.raises(ValueError, match=r"probe.draws: must be an integer >= 1, got 0"):
        run_experiment(CONFIG, out_dir=tmp_path, progress=False,
                       overrides={**TINY, "probe.draws": 0})
    with pytest.raises(ValueError, match=r"probe.decoder\[0\]: unknown 'bp'"):
        run_experiment(CONFIG, out_dir=tmp_path, progress=False,
                       overrides={**TINY, "probe.decoder": ["bp"]})
    assert list(tmp_path.iterdir()) == []


def test_check_and_locality_commands_read_the_mpc_experiment(capsys):
    from neuro_pc.cli import load_circuits, main

    circuits = load_circuits(CONFIG)
    assert list(circuits) == ["mpc"] and circuits["mpc"].metadata["hidden"] == [64, 64]
    assert main(["locality", CONFIG]) == 0
    assert "population-level" in capsys.readouterr().out
    assert main(["check", CONFIG, "--target", "loihi2"]) == 0
    out = capsys.readouterr().out
    # 6 streams x (W1, W2, E1) + 14 st2 pairs x 2 layers x (R, A, ER) = 102 rules, and
    # kwta / the unit norms keep every one of them off chip
    assert "summary: 0/102 rules on chip" in out
    assert "'unit_rows'" in out and "kwta()" in out


# -- the options for MNIST: validation hold-out, test subset, pools, budgets ------------------

def test_validation_hold_out_and_test_subset_come_from_the_right_sets():
    """``[data] validation`` scores on training images held out (never the test set),
    the same for every call; ``[data] test`` keeps a fixed random subset."""
    from neuro_pc.data import load_dataset
    from neuro_pc.experiments import load_config
    from neuro_pc.experiments.mpc import Config, load_data
    from neuro_pc.experiments.config import coerce

    full = load_dataset("digits", seed=0)
    cfg = coerce(Config, load_config(CONFIG, overrides={"data.validation": 300}))
    d = load_data(cfg, 0)
    assert len(d.y_test) == 300 and len(d.y_train) == len(full.y_train) - 300
    rows = {r.tobytes() for r in full.x_train}
    assert all(r.tobytes() in rows for r in d.x_test)          # held out of the training set
    assert not {r.tobytes() for r in d.x_train} & {r.tobytes() for r in d.x_test}
    assert np.array_equal(load_data(cfg, 0).x_test, d.x_test)
    cfg = coerce(Config, load_config(CONFIG, overrides={"data.test": 50}))
    d = load_data(cfg, 0)
    assert len(d.y_test) == 50 and len(d.y_train) == len(full.y_train)
    test_rows = [r.tobytes() for r in full.x_test]
    idx = [test_rows.index(r.tobytes()) for r in d.x_test]
    assert idx == sorted(idx) and np.array_equal(load_data(cfg, 0).x_test, d.x_test)


def test_subsets_and_supervised_epochs():
    from neuro_pc.experiments.mpc import Baselines, subset

    assert np.array_equal(subset(10, None, 0, 3), np.arange(10))
    assert np.array_equal(subset(10, 20, 0, 3), np.arange(10))
    s = subset(100, 7, 0, 3)
    assert len(set(s)) == 7 and list(s) == sorted(s)
    assert np.array_equal(s, subset(100, 7, 0, 3)) and not np.array_equal(s, subset(100, 7, 1, 3))
    b = Baselines(epochs=10, max_epochs=100)
    assert b.epochs_for(1000, 1000) == 10                 # all labels: the full-label epochs
    assert b.epochs_for(500, 1000) == 20                  # the same number of updates
    assert b.epochs_for(100, 1000) == 100                 # 10 * 1000 / 100
    assert b.epochs_for(10, 1000) == 100                  # capped at max_epochs
    assert Baselines(epochs=10, presentations=50).epochs_for(100, 1000) == 10   # at least epochs


MNIST = "experiments/mpc_mnist.toml"
MNIST_TINY = {"model.hidden": [16, 16], "model.k": 3, "model.relax_steps": 2,
              "train.seeds": [0], "train.saccades": 2, "train.images": 200,
              "probe.pool": 300, "data.test": 200, "probe.labels": [100, "all"],
              "probe.draws": 1, "probe.decoder_images": 100, "probe.decoder_epochs": 5,
              "probe.decoder_hidden": 64, "baselines.hidden": [32], "baselines.epochs": 1,
              "baselines.max_epochs": 2}


@pytest.mark.slow
def test_mpc_mnist_smoke(tmp_path, mnist_dir):
    """experiments/mpc_mnist.toml at smoke size (the paper's glimpse geometry, tiny
    latent layers): every method at two label budgets, the paper's numbers beside
    ours, the subsample sizes in the table, and the sample-efficiency plot."""
    run_dir, outcome = run_experiment(MNIST, out_dir=tmp_path, progress=False,
                                      overrides=MNIST_TINY)
    res = json.loads((run_dir / "results.json").read_text())
    assert set(res["methods"]) == {"pixels", "random", "kmeans", "mpc", "bp", "pc"}
    for method, per in res["methods"].items():
        assert set(per) == {"100", "all"}
        assert per["all"]["mean"] > 0.3, method            # chance is 0.1
    ex = res["extra"]
    assert (ex["pool"], ex["mpc_images"], ex["test_images"]) == (300, 200, 200)
    assert ex["feature_dim"] == 2 * 6 * 16 and ex["supervised_sizes"] == [784, 32, 10]
    assert set(res["decoder"]) == {"random", "mpc", "mean image"}
    assert "mpc_minus_random" in res and res["paper"]["accuracy"]["mpc"].startswith("97.81")
    s = outcome.summary
    assert "97.81 ± 0.02" in s and "98.04 ± 0.03" in s and "arXiv 2503.21796" in s
    assert "pool of 300 training images" in s and "scored on 200 test images" in s
    pytest.importorskip("matplotlib")
    assert (run_dir / "sample_efficiency.png").stat().st_size > 0


@pytest.mark.slow
def test_check_reports_what_of_mpc_mnist_fits_loihi2(capsys, mnist_dir):
    """``neuro-pc check experiments/mpc_mnist.toml --target loihi2``: the paper-size
    circuit (6 streams, 144-unit layers) fits one chip, and every rule is off
    chip because of kwta and the column / row norms."""
    from neuro_pc.cli import main

    assert main(["check", MNIST, "--target", "loihi2"]) == 0
    out = capsys.readouterr().out
    assert "summary: 0/102 rules on chip; fits" in out
    assert "50 core(s) on 1 chip(s)" in out and "0/48 populations on Lava's own LIF" in out
    assert "kwta()" in out and "'unit_columns'" in out and "'unit_rows'" in out
