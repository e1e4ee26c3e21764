"""Reference backend vs a hand-written NumPy FA loop, same run, same work.

    .venv/bin/python benchmarks/bench_reference.py [--epochs 3] [--repeats 3]

Trains 64-128-10 tanh FA online (batch 1) on sklearn's digits both ways, in
the same sample order, checks that both end with the same weights (so the
two really do the same learning), and prints samples/s and the ratio. Best of
``--repeats`` timings, to damp the noise of a shared machine.

What bounds the ratio: the circuit runs a presentation window of T = 2L + 1
= 5 steps per sample (the one-step delays of the semantics), each step
computing every port (3 matrix-vector products) and every population update,
where the hand-written loop does one forward and one backward pass. At batch 1
both are dominated by per-call NumPy overhead, not arithmetic.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from neuro_pc.backends.base import sample_order
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.data import load_digits
from neuro_pc.models import mlp


def handwritten_fa(W1, b1, W2, b2, B1, x, Y, order, eta):
    """The plain FA loop: what a researcher writes by hand."""
    for i in order:
        xi, yi = x[i], Y[i]
        h = np.tanh(W1 @ xi + b1)
        out = W2 @ h + b2
        e = out - yi
        d1 = (B1 @ e) * (1 - h * h)
        W2 -= eta * np.outer(e, h)
        b2 -= eta * e
        W1 -= eta * np.outer(d1, xi)
        b1 -= eta * d1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    d = load_digits()
    Y = d.one_hot(d.y_train)
    circuit = mlp([64, 128, 10], rule="fa", eta=0.01)
    n = args.epochs * len(d.x_train)
    t_ref, t_hand = [], []
    for _ in range(args.repeats):
        sim = ReferenceSimulator(circuit, seed=0)
        w = {k: v.copy() for k, v in sim.weights.items()}
        t0 = time.perf_counter()
        sim.train(d.x_train, Y, epochs=args.epochs, seed=0)
        t_ref.append(time.perf_counter() - t0)
        W1, b1, W2, b2 = w["W1"], w["b1"][:, 0], w["W2"], w["b2"][:, 0]
        order = sample_order(len(d.x_train), args.epochs, 0)
        t0 = time.perf_counter()
        handwritten_fa(W1, b1, W2, b2, w["B1"], d.x_train, Y, order, 0.01)
        t_hand.append(time.perf_counter() - t0)
        assert np.allclose(sim.weights["W1"], W1, atol=1e-9), "the two loops disagree"
    ref, hand = min(t_ref), min(t_hand)
    print(f"FA 64-128-10 on digits, batch 1, {n} samples, best of {args.repeats}")
    print(f"  hand-written NumPy loop : {n / hand:10.0f} samples/s")
    print(f"  neuro_pc reference      : {n / ref:10.0f} samples/s  "
          f"(window T={circuit.schedule.window} steps/sample)")
    print(f"  ratio reference/hand-written time: {ref / hand:.2f}x  (target: within 2x)")
    print("  weights equal after training: yes")


if __name__ == "__main__":
    main()
