"""The cnn_depth kind end to end at toy size (digits, 8x8 images), its config errors,
and the shipped config's schema (those need MNIST: skipped without it, failed in CI)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuro_pc.experiments import ConfigError, load_config, run_experiment

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "experiments" / "cnn_depth.toml"

TINY = """
[experiment]
kind = "cnn_depth"
name = "cnn_tiny"
backend = "reference"
[data]
name = "digits"
[model]
depths = [1, 2]
channels = [4, 8]
strides = [1, 2]
init = "he"
[train]
variants = ["bp", "fa", "fa_layernorm_muon"]
seeds = [0, 1]
epochs = 2
batch_size = 32
eta = {bp = 0.05, fa = 0.05, fa_layernorm_muon = 0.003}
muon_lr = 0.003
[record]
samples = 64
[run]
workers = 1
"""


def test_tiny_run_prints_the_tables_and_writes_the_plots(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    run_dir, outcome = run_experiment(str(cfg), out_dir=tmp_path, progress=False)
    res = json.loads((run_dir / "results.json").read_text())
    assert res["depths"] == [1, 2] and res["init"] == "he"
    assert res["eta"] == {"bp": 0.05, "fa": 0.05, "fa_layernorm_muon": 0.003}
    for d in ("1", "2"):
        bp, fa = res["results"][d]["bp"], res["results"][d]["fa"]
        assert bp["n"] == 2 and bp["diverged"] == 0
        assert bp["accuracy"]["mean"] > 0.3            # two epochs on digits learn
        # BP's error signal is BP's: angle 0; FA's is not
        assert bp["angle_signal_deg"]["mean"] == pytest.approx(0, abs=1e-3)
        assert fa["angle_signal_deg"]["mean"] > 1
        assert 1 <= fa["signal/erank"]["mean"] <= 64
        # one erank per record: before training and after each epoch
        assert len(fa["signal/erank/over_training"]) == 3
        assert len(fa["signal/erank/per_layer"]) == int(d)
    for name in ("accuracy_vs_depth.png", "erank_vs_depth.png", "erank_over_training.png",
                 "erank_per_layer.png", "summary.txt"):
        assert (run_dir / name).exists(), name
    s = outcome.summary
    assert "-- accuracy (%)" in s and "-- erank of the error signal" in s
    assert "init=he" in s and "eta: bp 0.05, fa 0.05, fa_layernorm_muon 0.003" in s


@pytest.mark.parametrize("key, value, match", [
    ("train.variants", ["pc"], "no CNN builder"),
    ("train.variants", ["fa_groupnorm"], "fa_groupnorm"),
    ("experiment.backend", "brian2", "learning a shared kernel"),
    ("model.depths", [0], "depths"),
])
def test_config_errors_are_one_clear_line(key, value, match, mnist_dir):
    with pytest.raises(ConfigError, match=match):
        load_config(str(SHIPPED), overrides={key: value})


def test_shipped_config_is_the_documented_one(mnist_dir):
    cfg = load_config(str(SHIPPED))
    assert cfg.experiment.kind == "cnn_depth" and cfg.data.name == "mnist"
    assert cfg.data.validation == 0          # the shipped run reports the test set
    assert len(cfg.train.seeds) >= 2
    assert {"bp", "fa", "kp", "fa_layernorm", "fa_muon",
            "fa_layernorm_muon"} <= set(cfg.train.variants)
    assert cfg.model.init == "he" and cfg.train.eta_of("fa_muon") == 0.03
    # DFA at 0.01 of its He-scaled feedback (chosen on the validation split)
    assert "dfa" in cfg.train.variants and cfg.train.feedback_scale_of("dfa") == 0.01
    assert cfg.train.feedback_scale_of("fa") == 1.0 and cfg.train.eta_of("dfa") == 0.02


def test_feedback_scale_reaches_the_random_feedback_of_the_variants_it_names():
    """``train.feedback_scale`` (a table like ``eta``) scales DFA's (and FA's) random
    feedback initialisation in the built circuit, and only the variants it names."""
    import math

    from neuro_pc.experiments.cnn_depth import Config, build
    from neuro_pc.experiments.config import coerce

    cfg = coerce(Config, {"experiment": {"kind": "cnn_depth"},
                          "data": {"name": "digits"},
                          "model": {"depths": [2], "channels": [4, 8], "init": "he"},
                          "train": {"variants": ["dfa", "fa"], "eta": 0.01,
                                    "feedback_scale": {"dfa": 0.03}}})
    assert cfg.train.feedback_scale_of("dfa") == 0.03
    assert cfg.train.feedback_scale_of("fa") == 1.0

    def b1(variant):
        c = build(variant, 2, (1, 8, 8), 10, cfg.model, cfg.train)
        return next(p for p in c.projections if p.name == "B1").init

    # DFA's B1 reads the 10 output errors: He-uniform ±sqrt(6/10), times the scale
    assert b1("dfa").scale == pytest.approx(0.03 * math.sqrt(6 / 10))
    assert b1("fa").scale == pytest.approx(math.sqrt(6 / (4 * 9)))   # W2's fan-in C·kh·kw
    with pytest.raises(ConfigError, match="train.feedback_scale"):
        coerce(Config, {"experiment": {"kind": "cnn_depth"}, "data": {"name": "digits"},
                        "train": {"variants": ["dfa"], "feedback_scale": {"dfa": 0}}})
    with pytest.raises(ConfigError, match="train.feedback_scale"):
        coerce(Config, {"experiment": {"kind": "cnn_depth"}, "data": {"name": "digits"},
                        "train": {"variants": ["dfa"], "feedback_scale": {"fx": 0.1}}})
