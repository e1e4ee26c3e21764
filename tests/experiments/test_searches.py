"""experiments/searches/: the scripts the docs' searches were run with."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.models.spiking import spiking_mlp

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments/searches" /
                                                  f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rate_equivalent_is_the_spiking_net_in_rates():
    """The premise of spiking_rate_equivalent.py: the spiking FA net's hidden rates
    at the window's end are clip(W1 x + b1, 0, 1) to within the spike count's
    step, the encoder's and the step of delay, and its update is close to the rate
    equivalent's."""
    search = _load("spiking_rate_equivalent")
    T = 256
    rng = np.random.default_rng(0)
    x = rng.random((64, 20)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 64)]
    c = spiking_mlp([20, 30, 4], window=T, init_scale=2.0, output_error="hinge", eta=1.0)
    w = {k: np.asarray(v, np.float32) for k, v in c.init_weights(0).items()}
    sim = ReferenceSimulator(c, {k: v.copy() for k, v in w.items()}, dtype="float32")
    up = sim.compute_updates(x, y)
    h, z = search.forward(w, x)
    gap = np.abs(sim.state["h1.tr"] - h)
    assert gap.max() <= 5 / T and gap.mean() <= 2 / T, (gap.max() * T, gap.mean() * T)
    e = np.clip(z, 0, 1) - y
    d = (e @ w["B1"].T) * (h > 0)
    assert search.angle(up["W2"], -(e.T @ h)) < 5
    assert search.angle(up["W1"], -(d.T @ x)) < 10


def test_the_rate_equivalent_trains():
    search = _load("spiking_rate_equivalent")
    rng = np.random.default_rng(1)
    centres = rng.random((4, 20))
    labels = rng.integers(0, 4, 400)
    x = np.clip(centres[labels] + 0.1 * rng.standard_normal((400, 20)), 0, 1).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[labels]
    w = {k: np.asarray(v, np.float32).copy() for k, v in
         spiking_mlp([20, 30, 4], window=16).init_weights(0).items()}
    before = float((search.forward(w, x[300:])[1].argmax(1) == labels[300:]).mean())
    curve = search.train(w, x[:300], y[:300], x[300:], labels[300:], eta=0.5, decay=0.9,
                         epochs=5, batch=16, seed=0)
    assert len(curve) == 5 and curve[-1] >= 0.9 > before, (before, curve)


def test_mpc_energy_trace_measures_before_and_after_each_part():
    """mpc_energy_trace.py on the digits config: every part is measured, the
    held-out energy falls with the target term on (the E-step is then descent on
    F, so both steps lower it; test_mpc.py holds that for the circuit), and the
    held-out images must come from a validation split, never the test set."""
    import pytest

    search = _load("mpc_energy_trace")
    cfg = ROOT / "experiments/mpc_digits.toml"
    small = {"data.validation": 200, "model.hidden": [16, 16], "model.k": 4,
             "model.eta": 0.05, "model.target_term": True, "train.batch_size": 50,
             "train.saccades": 3}
    rows = search.trace(cfg, images=400, held_out=100, checkpoints=2, overrides=small)
    assert [r["images"] for r in rows] == [0, 200, 400]
    for r in rows:
        assert set(r) == {"images", "F_intra", "F_cross", "norm_z_top", "norm_mu1",
                          "participation"}
        assert 1 <= r["participation"] <= 16 and r["F_intra"] > 0 and r["F_cross"] > 0
    assert rows[-1]["F_intra"] + rows[-1]["F_cross"] < rows[0]["F_intra"] + rows[0]["F_cross"]
    with pytest.raises(ValueError, match="validation"):
        search.trace(cfg, images=20, overrides={**small, "data.validation": 0})
