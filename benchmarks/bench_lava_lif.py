"""A trained spiking FA deployed on Lava's own LIF: accuracy in every form.

    .venv/bin/python benchmarks/bench_lava_lif.py [--hidden 128] [--epochs 10] [--window 32]

Trains ``spiking_mlp`` (FA, the project's LIF reset by subtraction) on the
digits train split on the reference, deploys its forward weights with
``spiking_inference`` (hidden layers ``LavaLIF``: Lava's LIF, reset to 0,
staggered restarts) and reports the test accuracy of: the trained circuit;
the deployed circuit on the float reference and on the quantised reference
(Lava's LIF arithmetic); Lava ``floating_pt`` and ``fixed_pt`` over the whole
test split in one run each, with their agreement with those references.
The numbers in docs/models/spiking.md come from the defaults (~2.5 min here).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from neuro_pc.backends import compile
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.backends.reference.quantized import QuantizedReferenceSimulator
from neuro_pc.data.digits import load_digits
from neuro_pc.models.spiking import inference_weights, spiking_inference, spiking_mlp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[128])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    ds = load_digits(seed=a.seed)
    sizes, T = [64, *a.hidden, 10], a.window

    def acc(pred) -> str:
        return f"{100 * float((np.asarray(pred) == ds.y_test).mean()):.2f} %"

    t0 = time.perf_counter()
    trained = ReferenceSimulator(spiking_mlp(sizes, rule="fa", window=T), seed=a.seed)
    trained.train(ds.x_train, np.eye(10)[ds.y_train], epochs=a.epochs, seed=a.seed)
    print(f"{sizes}, T={T}, {a.epochs} epochs: trained in {time.perf_counter() - t0:.0f} s")
    print("trained circuit (LIF, reset by subtraction), reference:",
          acc(trained.predict(ds.x_test)))
    c = spiking_inference(sizes, window=T)
    w = inference_weights(c, trained.weights)
    ro_r = ReferenceSimulator(c, w, seed=a.seed).present(ds.x_test, train=False)
    print("deployed (LavaLIF), reference float:", acc(ro_r.argmax(1)))
    q = QuantizedReferenceSimulator(c, w, seed=a.seed)
    ro_q = q.present(ds.x_test, train=False)     # windows are independent: one batch
    print("deployed, quantised reference (Lava's LIF arithmetic):", acc(ro_q.argmax(1)),
          f"({sorted(q.lif)} on Lava's LIF)")
    for tag, ro_ref in (("floating_pt", ro_r), ("fixed_pt", ro_q)):
        lav = compile(c, "lava", w, seed=a.seed, tag=tag)
        ro = lav.readouts(ds.x_test)
        same = "bit for bit" if np.array_equal(ro, ro_ref) else \
            f"max difference {np.abs(ro - ro_ref).max():.3g}"
        print(f"deployed, Lava {tag}: {acc(ro.argmax(1))}; {ro.size} readout values vs the "
              f"{'quantised ' if tag == 'fixed_pt' else ''}reference: {same}; "
              f"{lav.last_run['steps']} steps in {lav.last_run['run_s']:.1f} s")


if __name__ == "__main__":
    main()
