"""On-engine learning speed: the same circuit learning in Lava through Lava's learning
engine (LearningDense; floating_pt and fixed_pt) and through the project's PlasticDense
(floating_pt), in one run, plus the reference's emulation of the engine.

    .venv/bin/python benchmarks/bench_onchip.py [--samples 300] [--repeats 3]
                                                 [--circuit rate|spiking]

Every variant trains the same circuit online on digits for ``--samples`` windows
(one Lava ``run()`` each, Lava's compile and process start-up included); the best of
``--repeats`` is reported in steps/s, and the ratios against PlasticDense. Lava runs one
OS process per Lava process, so the figures depend on the cores and on what else runs:
compare ratios from the same run, not absolute numbers across runs.
"""
from __future__ import annotations

import argparse
import math
import os
import time

from neuro_pc.backends.lava import LavaSimulator
from neuro_pc.backends.reference.engine import EngineSimulator
from neuro_pc.data import load_digits
from neuro_pc.models import mlp
from neuro_pc.models.spiking import Trace, spiking_mlp


def circuit(kind: str):
    if kind == "rate":
        return mlp([64, 128, 10], rule="fa", act="relu", eta=0.01)
    return spiking_mlp([64, 128, 10], rule="fa", window=16, eta=0.01,
                       trace=Trace(decay=math.exp(-1 / 4), impulse=0.25, window_reset=False))


def timed(make, x, y, repeats: int) -> float:
    """Best steps/s of ``repeats`` one-run trainings (a fresh simulator each)."""
    best = 0.0
    for _ in range(repeats):
        sim = make()
        t0 = time.perf_counter()
        sim.run_windows(x, y, train=True)
        dt = time.perf_counter() - t0
        best = max(best, len(x) * sim.circuit.schedule.window / dt)
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--circuit", choices=("rate", "spiking"), default="rate")
    args = ap.parse_args(argv)
    d = load_digits()
    x, y = d.x_train[:args.samples], d.one_hot(d.y_train[:args.samples])
    c = circuit(args.circuit)
    variants = {
        "PlasticDense floating_pt": lambda: LavaSimulator(c, seed=0, tag="floating_pt"),
        "LearningDense floating_pt": lambda: LavaSimulator(c, seed=0, tag="floating_pt",
                                                           learning="engine"),
        "LearningDense fixed_pt": lambda: LavaSimulator(c, seed=0, tag="fixed_pt",
                                                        learning="engine"),
        "emulation fixed_pt (reference)": lambda: EngineSimulator(c, seed=0, tag="fixed_pt"),
    }
    print(f"{c.name}: {args.samples} windows of T={c.schedule.window} steps, best of "
          f"{args.repeats}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rates = {name: timed(make, x, y, args.repeats) for name, make in variants.items()}
    base = rates["PlasticDense floating_pt"]
    width = max(map(len, rates))
    for name, r in rates.items():
        print(f"  {name:{width}s}  {r:8.0f} steps/s   {r / base:5.2f}x PlasticDense")


if __name__ == "__main__":
    main()
