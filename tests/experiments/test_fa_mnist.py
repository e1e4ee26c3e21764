"""compare_rules' batched / float32 / validation / signal-angle options, and a
smoke-size run of experiments/fa_mnist.toml on the published MNIST."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neuro_pc.experiments import ConfigError, load_config, run_experiment
from neuro_pc.experiments.compare_rules import _data, alignment
from neuro_pc.models import mlp

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "experiments/fa_digits.toml")
FA_MNIST = str(ROOT / "experiments/fa_mnist.toml")
BATCHED = {"train.epochs": 2, "train.seeds": [0], "train.rules": ["bp", "fa", "kp", "ss", "pc"],
           "train.batch_size": 16, "train.dtype": "float32", "train.eta_decay": 0.5,
           "train.default_eta": 0.05, "train.lam.kp": 1e-4, "angles.samples": 64,
           "angles.signals": True, "anchors.fa": "97.8 % (somebody, some year)"}


def test_batched_float32_run_with_signals_and_anchors(tmp_path):
    run_dir, outcome = run_experiment(DIGITS, out_dir=tmp_path, progress=False,
                                      overrides=BATCHED)
    res = json.loads((run_dir / "results.json").read_text())
    assert (res["batch_size"], res["dtype"], res["eta_decay"]) == (16, "float32", 0.5)
    bp, fa, kp, ss, pc = (res["rules"][r] for r in ("bp", "fa", "kp", "ss", "pc"))
    assert bp["delta_angle_mean"] == pytest.approx(0, abs=1e-3)
    assert bp["weight_angle_mean"] == pytest.approx(0, abs=1e-6)
    assert pc["weight_angle_mean"] < 1.0            # learned feedback starts as W2ᵀ and stays
    assert 0 < ss["weight_angle_mean"] < 45         # sign(W)ᵀ is correlated with Wᵀ
    assert 45 < fa["weight_angle_mean"] < 100       # fixed random feedback: far from Wᵀ
    for r in (bp, fa, kp, ss, pc):
        run = r["runs"][0]
        assert len(run["curve"]) == 2 and len(run["delta_angle_curve"]) == 2
        assert run["train_seconds"] > 0 and r["test_accuracy_mean"] > 0.3
    assert fa["published"] == "97.8 % (somebody, some year)"
    summary = outcome.summary
    assert "batch=16  dtype=float32  eta_decay=0.5/epoch" in summary
    assert "δ1 vs BP" in summary and "published (not measured here):" in summary
    assert "fa     97.8 % (somebody, some year)" in summary


def test_eta_decay_multiplies_the_rate_each_epoch(tmp_path):
    """With eta_decay the epochs run one by one with eta·decay^epoch: a decay of 1e-9
    freezes learning after the first epoch, so the second changes nothing."""
    over = {**BATCHED, "train.rules": ["fa"], "train.eta_decay": 1e-9, "angles.signals": False}
    _, outcome = run_experiment(DIGITS, out_dir=tmp_path, progress=False, overrides=over)
    curve = outcome.results["rules"]["fa"]["runs"][0]["curve"]
    assert curve[0] == curve[1]
    over["train.eta_decay"] = 1.0
    _, outcome = run_experiment(DIGITS, out_dir=tmp_path, progress=False, overrides=over)
    curve = outcome.results["rules"]["fa"]["runs"][0]["curve"]
    assert curve[0] != curve[1]


def test_validation_is_carved_from_the_training_set():
    cfg = load_config(DIGITS, overrides={"data.validation": 300})
    full = _data(load_config(DIGITS).data)
    val = _data(cfg.data)
    assert len(val.y_train) == len(full.y_train) - 300 and len(val.y_test) == 300
    perm = np.random.default_rng(0).permutation(len(full.y_train))   # split_seed 0
    np.testing.assert_array_equal(val.x_test, full.x_train[np.sort(perm[:300])])
    np.testing.assert_array_equal(val.x_train, full.x_train[np.sort(perm[300:])])
    np.testing.assert_array_equal(val.y_test, full.y_train[np.sort(perm[:300])])
    assert val.name == "digits-validation"
    with pytest.raises(ConfigError, match="data.validation: 5000 samples would leave none"):
        _data(load_config(DIGITS, overrides={"data.validation": 5000}).data)


def test_validation_runs_say_so(tmp_path):
    over = {"train.epochs": 1, "train.seeds": [0], "train.rules": ["bp"], "angles.samples": 16,
            "data.validation": 200}
    _, outcome = run_experiment(DIGITS, out_dir=tmp_path, progress=False, overrides=over)
    assert "validation accuracy" in outcome.summary and "test accuracy" not in outcome.summary
    assert outcome.results["evaluated_on"].startswith("validation: 200 samples held out")


def test_batched_and_float32_need_the_reference():
    for key, value in (("train.batch_size", 8), ("train.dtype", "float32")):
        with pytest.raises(ConfigError, match=f"{key}: .* needs the reference backend"):
            load_config(DIGITS, overrides={key: value}, backend="brian2")
    load_config(DIGITS, overrides={"train.batch_size": 8}, backend="lava")   # deploy: trains on ref


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_alignment_of_bp_with_itself_and_of_pc(loss):
    """BP's angles to its own twin are zero, with either loss (the twin has the
    circuit's loss: a cross-entropy BP compared with a squared-error one would be
    tens of degrees off)."""
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 8)), np.eye(3)[rng.integers(3, size=16)]
    bp = mlp([8, 6, 3], rule="bp", loss=loss)
    w = bp.init_weights(0)
    a = alignment(bp, w, x, y, signals=True)
    assert max(a["angle_to_bp_deg"], a["delta_angle_deg"], a["weight_angle_deg"]) < 1e-9
    pc = mlp([8, 6, 3], rule="pc", loss=loss)
    a = alignment(pc, pc.init_weights(0), x, y, signals=True)
    assert a["weight_angle_deg"] == pytest.approx(0, abs=1e-6)   # B1 starts as W2ᵀ
    assert a["delta_angle_deg"] < 30 and a["angle_to_bp_deg"] < 30


@pytest.mark.slow
def test_fa_mnist_smoke(tmp_path, mnist_dir):
    """experiments/fa_mnist.toml at smoke size: every rule, one seed, one epoch on
    600 MNIST samples; checks the run completes with every column and anchor."""
    over = {"data.limit_train": 600, "data.limit_test": 300, "train.epochs": 1,
            "train.seeds": [0], "angles.samples": 64}
    run_dir, outcome = run_experiment(FA_MNIST, out_dir=tmp_path, progress=False,
                                      overrides=over)
    res = json.loads((run_dir / "results.json").read_text())
    assert set(res["rules"]) == {"bp", "fa", "dfa", "ss", "kp", "pc"}
    for rule, r in res["rules"].items():
        assert r["test_accuracy_mean"] > 0.15, rule   # above chance (0.1) after 600 samples
        assert r["sizes"][0] == 784 and r["sizes"][-1] == 10
        assert "published" in r or rule in ("ss", "pc")
        assert np.isfinite(r["delta_angle_mean"]) and np.isfinite(r["weight_angle_mean"])
    assert res["dtype"] == "float32" and res["batch_size"] > 1
    assert "Akrout" in outcome.summary and "Nøkland" in outcome.summary


def test_standardize_uses_the_training_features_only():
    raw = _data(load_config(DIGITS, overrides={"data.validation": 300}).data)
    std = _data(load_config(DIGITS, overrides={"data.validation": 300,
                                               "data.standardize": True}).data)
    m, s = raw.x_train.mean(), raw.x_train.std()
    assert abs(std.x_train.mean()) < 1e-12 and std.x_train.std() == pytest.approx(1.0)
    np.testing.assert_allclose(std.x_test, (raw.x_test - m) / s)
    assert std.x_test.mean() != pytest.approx(0.0, abs=1e-6)   # not standardized on itself
