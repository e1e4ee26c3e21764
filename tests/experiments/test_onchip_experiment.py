"""The on-chip learning experiment (neuro_pc.experiments.onchip): a tiny end-to-end run
inside Lava, both tags, the emulation compared, and neuro-pc check on its config."""
import json
import re

import numpy as np
import pytest

from neuro_pc.experiments import ConfigError, load_config, run_experiment
from neuro_pc.ir.artifact import load_artifact

pytest.importorskip("lava", exc_type=ImportError)
pytestmark = [pytest.mark.lava, pytest.mark.slow]

CONFIG = "experiments/onchip_fa_digits.toml"
TINY = {"rate.hidden": [8], "rate.epochs": 1, "spiking.hidden": [6, 6], "spiking.window": 8,
        "spiking.epochs": 1, "circuits.spiking": ["fa", "dfa"], "train.seeds": [0, 1],
        "train.float_seeds": 1, "train.limit_train": 30, "train.limit_test": 20,
        "engine.calibration": 30}


def test_tiny_onchip_experiment_trains_inside_lava(tmp_path):
    run_dir, outcome = run_experiment(CONFIG, out_dir=tmp_path, progress=False, overrides=TINY)
    res = json.loads((run_dir / "results.json").read_text())
    assert set(res["circuits"]) == {"rate_fa", "spiking_fa", "spiking_dfa"}
    for name, e in res["circuits"].items():
        assert set(e["engine"]) == {"floating_pt", "fixed_pt"}
        # float_seeds = 1: floating_pt on seed 0 only, fixed_pt on both seeds
        assert [r["seed"] for r in e["engine"]["floating_pt"]] == [0]
        assert [r["seed"] for r in e["engine"]["fixed_pt"]] == [0, 1]
        assert len(e["reference"]) == 2
        for tag, runs in e["engine"].items():
            r = runs[0]
            assert "emulation" not in runs[-1] or len(runs) == 1   # seed 0 only
            assert 0.0 <= r["accuracy"] <= 1.0 and r["steps_per_s"] > 0
            # seed 0 is repeated on the reference's emulation of the engine: equal
            assert r["emulation"]["equal"], (name, tag, r["emulation"])
            # the circuit Lava trained is kept, with the number formats it learned in
            art = load_artifact(run_dir / r["artifact"])
            assert art.metadata["onchip"] and art.metadata["test_accuracy"] == r["accuracy"]
            assert art.metadata["trained_on"] == f"lava {tag}"
            if tag == "fixed_pt":
                assert r["emulation"]["max_abs_difference"] == 0.0
            # the plan names a LearningDense rule for every plastic projection
            assert r["plan"]["projections"] and not r["plan"]["rejected"]
    # one line per rule and tag: "fa  fixed_pt  <acc> ± <sd>"
    lines = outcome.summary.splitlines()
    assert sum(bool(re.match(r"\s+(fa|dfa)\s+(floating_pt|fixed_pt)\s+[\d.]+ ± [\d.]+", ln))
               for ln in lines) == 6
    assert "emulation equal (bit for bit" in outcome.summary


def test_onchip_config_is_checked_before_training(tmp_path):
    with pytest.raises(ConfigError, match="experiment.backend"):
        load_config(CONFIG, overrides={"experiment.backend": "reference"})
    with pytest.raises(ConfigError, match="rate.act"):
        load_config(CONFIG, overrides={"rate.act": "tanh"})
    assert not list(tmp_path.iterdir())


def test_check_executes_the_onchip_rules(capsys):
    from neuro_pc.cli import main

    assert main(["check", CONFIG, "--target", "loihi2", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep) == {"rate_fa", "spiking_fa"}
    for name, r in rep.items():
        for e in r["expressibility"]:
            ex = e["executed"]
            assert ex["epochs"] == 100, (name, e["projection"])
            assert e["verdict"] == "yes" or e["verdict"] == "yes, if" or e["executed_problems"]
            assert np.isfinite(ex["correlation"])
