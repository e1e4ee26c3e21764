"""Does MPC's learning lower its own energy on held-out glimpses while its linear
probe falls? The diagnostic behind docs/models/mpc.md ("What the M-step optimises").

Trains the circuit of an MPC config (default experiments/mpc_mnist.toml) on
``--images`` training images in ``--checkpoints`` equal parts, as the experiment
does (batches of ``train.batch_size``, ``train.saccades`` windows per image, one
M-step per window), and after each part measures, on ``--held-out`` images of a
validation split (``data.validation``; the test set is not read) at the first
three fixations of the experiment's fixed evaluation sequence:

* the energy's intra-stream and cross-stream terms (``models.mpc.energy_terms``,
  per glimpse, mean over images and fixations);
* the mean norm of the top latent state ``z`` and of the first layer's
  feed-forward prediction ``mu`` (per stream, then averaged);
* the participation ratio of the top layer's ``phi`` in the first stream
  (``(sum lambda)^2 / sum lambda^2`` of its covariance: the number of
  directions it uses).

    python experiments/searches/mpc_energy_trace.py --eta 0.05 --images 2000

Needs MNIST for the default config (``NEURO_PC_DATA``, docs/data.md).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from neuro_pc.analysis import participation_ratio
from neuro_pc.backends import compile
from neuro_pc.experiments import load_config
from neuro_pc.experiments.mpc import build, load_data, train_mpc
from neuro_pc.models.mpc import energy_terms, latent_states

CONFIG = Path(__file__).resolve().parents[1] / "mpc_mnist.toml"


def measure(sim, sensor, images: np.ndarray, fixations: np.ndarray) -> dict:
    """The quantities of the module docstring for ``images`` at ``fixations`` ``(K, 2)``."""
    c = sim.circuit
    streams, top = c.metadata["streams"], len(c.metadata["hidden"])
    rows = []
    for fix in fixations:
        g = sensor.glimpse(images, np.broadcast_to(fix, (len(images), 2)))
        sim.present(g, train=False)
        z = latent_states(c, sim.state)
        intra, cross = energy_terms(c, sim.weights, g, z)
        phi = sim.state[f"z{top}_{streams[0]}.phi"]
        rows.append([intra.mean(), cross.mean(),
                     np.mean([np.linalg.norm(z[(top, s)], axis=1).mean() for s in streams]),
                     np.mean([np.linalg.norm(sim.state[f"z1_{s}.mu"], axis=1).mean()
                              for s in streams]),
                     participation_ratio(phi - phi.mean(axis=0))])   # of its covariance
    keys = ("F_intra", "F_cross", "norm_z_top", "norm_mu1", "participation")
    return dict(zip(keys, (float(v) for v in np.mean(rows, axis=0))))


def trace(config, images: int, held_out: int = 500, checkpoints: int = 4,
          seed: int = 0, overrides: dict | None = None) -> list[dict]:
    """``[{"images": n, **measure(...)}]`` before training and after each part."""
    cfg = load_config(config, overrides=overrides or {})
    if not cfg.data.validation:
        raise ValueError("set data.validation: the held-out images come from the "
                         "training set, never from the test set")
    data = load_data(cfg, seed)
    circuit, sensor = build(cfg)
    x_train, x_val = data.x_train[:images], data.x_test[:held_out]
    fix = sensor.fixed_saccades(1, cfg.train.saccades, seed + 1000)[0][:3]
    sim = compile(circuit, backend="reference", weights=circuit.init_weights(seed),
                  seed=seed, dtype=cfg.train.dtype)
    out = [{"images": 0, **measure(sim, sensor, x_val, fix)}]
    step = images // checkpoints
    for i in range(checkpoints):
        train_mpc(sim, sensor, x_train[i * step:(i + 1) * step], 1, cfg.train.batch_size,
                  cfg.train.saccades, seed + i)
        out.append({"images": (i + 1) * step, **measure(sim, sensor, x_val, fix)})
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--eta", type=float, default=0.05)
    ap.add_argument("--beta", type=float, default=None, help="model.cross_precision")
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--held-out", type=int, default=500)
    ap.add_argument("--checkpoints", type=int, default=4)
    ap.add_argument("--validation", type=int, default=10000, help="data.validation")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    overrides = {"data.validation": a.validation, "model.eta": a.eta}
    if a.beta is not None:
        overrides["model.cross_precision"] = a.beta
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        rows = trace(a.config, a.images, a.held_out, a.checkpoints, a.seed, overrides)
    print("images  F_intra  F_cross  |z_top|  |mu1|  participation")
    for r in rows:
        print(f"{r['images']:6d}  {r['F_intra']:7.4f}  {r['F_cross']:7.4f}  "
              f"{r['norm_z_top']:7.3f}  {r['norm_mu1']:5.3f}  {r['participation']:13.2f}")


if __name__ == "__main__":
    main()
