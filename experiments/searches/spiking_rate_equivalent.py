"""The rate equivalent of experiments/spiking_fa_mnist.toml, for choosing its training
rate on a validation split in seconds instead of a spiking run's 20 minutes.

The spiking net's non-leaky LIF units with reset by subtraction fire
``clip(I, 0, 1)`` spikes per step for a drive ``I`` per step, so its rate
equivalent is ``h = clip(W1 x + b1, 0, 1)``, ``o = clip(W2 h + b2, 0, 1)``,
trained with the spiking net's update: output error ``o - y``, hidden error
``(B1 e) * step(h)`` (the spiking gate: did the unit fire), batch-mean
outer products, the rate times ``decay`` after each epoch. The initial weights are
the spiking circuit's own draw for the seed.

Two uses (neither reads the test set):

    python experiments/searches/spiking_rate_equivalent.py --eta 0.1 --decay 0.9
        trains the rate equivalent on the training set minus a random validation
        split (``Dataset.hold_out``, the spiking experiment's ``data.validation``)
        and prints the validation accuracy after every epoch;

    python experiments/searches/spiking_rate_equivalent.py --weights ARTIFACT.npz
        evaluates a trained spiking net's weights as rates, exact and with the
        hidden rates floored to multiples of 1/T, on the same split, and prints
        the angle between the spiking net's batch update (512 training images,
        ``compute_updates``) and the rate equivalent's for either output error.

Needs MNIST (``NEURO_PC_DATA``, docs/data.md). Results: docs/experiments/fa_mnist.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from neuro_pc.analysis.metrics import angle
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.data import load_dataset
from neuro_pc.experiments import spiking
from neuro_pc.experiments.config import coerce, validation_split
from neuro_pc.ir.artifact import load_artifact


def forward(w: dict, x: np.ndarray, window: int = 0):
    """Hidden rates and output drive; ``window`` > 0 floors the hidden rates to
    multiples of ``1 / window`` (the spike count's resolution)."""
    h = np.clip(x @ w["W1"].T + w["b1"][:, 0], 0, 1)
    if window:
        h = np.floor(h * window) / window
    return h, h @ w["W2"].T + w["b2"][:, 0]


def train(w: dict, x, y_onehot, xv, yv, eta: float, decay: float, epochs: int,
          batch: int, seed: int) -> list[float]:
    """The spiking net's FA update on the rate equivalent (``w`` changed in place);
    the validation accuracy after each epoch."""
    rng = np.random.default_rng(seed)
    curve = []
    for epoch in range(epochs):
        k_eta = -eta * decay ** epoch
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch):
            idx = order[s:s + batch]
            xb, yb = x[idx], y_onehot[idx]
            h, z = forward(w, xb)
            e = np.clip(z, 0, 1) - yb
            d = (e @ w["B1"].T) * (h > 0)
            k = np.float32(k_eta / len(idx))
            w["W2"] += (e * k).T @ h
            w["b2"][:, 0] += k * e.sum(0)
            w["W1"] += (d * k).T @ xb
            w["b1"][:, 0] += k * d.sum(0)
        curve.append(float((forward(w, xv)[1].argmax(1) == yv).mean()))
    return curve


def update_angles(cfg, w: dict, x, y_onehot) -> None:
    """The spiking net's batch-mean update at weights ``w`` against the rate
    equivalent's, with each output error."""
    h, z = forward(w, x)
    e = np.clip(z, 0, 1) - y_onehot
    d = (e @ w["B1"].T) * (h > 0)
    rate = {"W2": -(e.T @ h), "W1": -(d.T @ x)}
    for error in ("target", "hinge"):
        variant = dataclasses.replace(
            cfg, model=dataclasses.replace(cfg.model, output_error=error, target_rate=None),
            train=dataclasses.replace(cfg.train, eta=1.0))
        circuit = spiking.build(variant, [x.shape[1], w["W1"].shape[0], y_onehot.shape[1]],
                                "fa")
        sim = ReferenceSimulator(circuit, {k: v.copy() for k, v in w.items()}, dtype="float32")
        up = sim.compute_updates(x, y_onehot)
        target = circuit.population("out").params["target"]
        print(f"output_error={error!r} (target {target * cfg.model.window:g}/"
              f"{cfg.model.window}): the update of W2 is {angle(up['W2'], rate['W2']):.1f} deg, "
              f"of W1 {angle(up['W1'], rate['W1']):.1f} deg from the rate equivalent's")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="experiments/spiking_fa_mnist.toml")
    ap.add_argument("--eta", type=float, default=0.1)
    ap.add_argument("--decay", type=float, default=0.9)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--validation", type=int, default=10000)
    ap.add_argument("--weights", help="a trained spiking artifact (.npz) to evaluate as rates")
    args = ap.parse_args(argv)

    from neuro_pc.experiments import load_config

    cfg = coerce(spiking.Config, load_config(args.config))
    data = validation_split(load_dataset("mnist", seed=args.seed), args.validation)
    x, xv, yv = (data.x_train.astype(np.float32), data.x_test.astype(np.float32), data.y_test)
    if args.weights:
        w = {k: np.asarray(v, np.float32) for k, v in load_artifact(args.weights).weights.items()}
        for window in (0, cfg.model.window):
            acc = (forward(w, xv, window)[1].argmax(1) == yv).mean()
            print(f"rate equivalent{f', hidden rates in steps of 1/{window}' if window else ''}: "
                  f"{100 * acc:.2f} % on the validation split")
        update_angles(cfg, w, x[:512], data.one_hot(data.y_train[:512]).astype(np.float32))
        return
    circuit = spiking.build(cfg, [data.n_features, args.hidden, data.n_classes], "fa")
    w = {k: np.asarray(v, np.float32).copy() for k, v in circuit.init_weights(args.seed).items()}
    started = time.time()
    curve = train(w, x, data.one_hot(data.y_train).astype(np.float32), xv, yv, args.eta,
                  args.decay, args.epochs, args.batch, args.seed)
    print(f"eta={args.eta} decay={args.decay} hidden={args.hidden} batch={args.batch}: "
          f"validation accuracy by epoch "
          + ", ".join(f"{100 * a:.2f}" for a in curve) + f"  ({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
