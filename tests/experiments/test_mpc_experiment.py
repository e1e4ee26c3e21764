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
