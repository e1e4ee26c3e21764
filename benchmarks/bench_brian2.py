"""Brian2 backend throughput: compiled circuit vs a hand-written Brian2 script.

Usage::

    .venv/bin/python benchmarks/bench_brian2.py                 # all parts
    .venv/bin/python benchmarks/bench_brian2.py --parts handwritten --target cython
    .venv/bin/python benchmarks/bench_brian2.py --parts standalone --samples-large 2000

Parts
-----
handwritten  training throughput (samples/s) of ``mlp(sizes, rule="fa")`` compiled by
             neuro_pc vs the same FA network written by hand in Brian2 below
             (same equations, same schedule, same data, same target), ratio printed;
             and vs the reference backend (NumPy, batch size 1).
standalone   784-500-10 FA on random data: cpp_standalone vs the runtime target(s).

Timing excludes compilation: every configuration runs once to warm Brian2's
caches (Cython cache; a per-process cpp_standalone build directory), then is
timed on a second, identical run. The wall time of the whole ``train()``
call is measured (building the network, the one ``run()``, reading back).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from neuro_pc.backends import compile
from neuro_pc.models import mlp


def random_data(n, n_in, n_out, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, n_in))
    y = np.eye(n_out)[rng.integers(0, n_out, n)]
    return x, y


# -- the hand-written peer --------------------------------------------------------------
def handwritten_fa(x, y, weights, eta, T, target="numpy"):
    """One-hidden-layer FA written directly in Brian2, the way a Brian2 user would:
    rate units updated by run_regularly, summed-variable synapses (one-step delay),
    plasticity at the end of each window, data streamed through TimedArrays in one run.
    Returns the trained weights."""
    import brian2 as b2

    b2.prefs.codegen.target = target
    n, n_in = x.shape
    n_h, n_out = weights["W1"].shape[0], weights["W2"].shape[0]
    step = 1 * b2.ms
    clock = b2.Clock(dt=step, name="hw_clock")
    window = b2.Clock(dt=T * step, name="hw_window")
    X = b2.TimedArray(x, dt=T * step, name="hw_X")
    Y = b2.TimedArray(y, dt=T * step, name="hw_Y")
    inp = b2.NeuronGroup(n_in, "r : 1", clock=clock, name="hw_inp")
    inp.run_regularly("r = X(t - step, i)", when="groups")
    bias = b2.NeuronGroup(1, "r : 1", clock=clock, name="hw_bias")
    bias.r = 1.0
    hid = b2.NeuronGroup(n_h, """r : 1
                                 delta : 1
                                 ff_x : 1
                                 ff_b : 1
                                 fb : 1""", clock=clock, name="hw_hid")
    hid.run_regularly("""r = tanh(ff_x + ff_b)
                         delta = fb * (1 - r**2)""", when="groups")
    out = b2.NeuronGroup(n_out, """r : 1
                                   delta : 1
                                   ff_h : 1
                                   ff_b : 1""", clock=clock, name="hw_out")
    out.run_regularly("""r = ff_h + ff_b
                         delta = r - Y(t - step, i)""", when="groups")

    def synapses(src, tgt, port, var, w, plastic, name):
        s = b2.Synapses(src, tgt, f"w : 1\n{port}_post = w * {var}_pre : 1 (summed)",
                        clock=clock, name=name)
        s.connect()
        s.w = w[s.j[:], s.i[:]]
        if plastic:
            s.run_regularly("w -= eta * delta_post * r_pre", clock=window, when="end")
        return s

    S = [synapses(inp, hid, "ff_x", "r", weights["W1"], True, "hw_W1"),
         synapses(bias, hid, "ff_b", "r", weights["b1"], True, "hw_b1"),
         synapses(hid, out, "ff_h", "r", weights["W2"], True, "hw_W2"),
         synapses(bias, out, "ff_b", "r", weights["b2"], True, "hw_b2"),
         synapses(out, hid, "fb", "delta", weights["B1"], False, "hw_B1")]
    net = b2.Network(inp, bias, hid, out, *S)
    net.t_ = float(step)          # windows end on multiples of T steps
    net.run(n * T * step, namespace={"X": X, "Y": Y, "step": step, "eta": eta})
    out_w = {}
    for s, k in zip(S, ("W1", "b1", "W2", "b2", "B1")):
        w = np.zeros_like(weights[k])
        w[s.j[:], s.i[:]] = s.w[:]
        out_w[k] = w
    return out_w


def timed(fn, repeat=1):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_handwritten(sizes, n, target, repeat):
    circuit = mlp(sizes, rule="fa", eta=0.001)
    x, y = random_data(n, sizes[0], sizes[-1])
    T = circuit.schedule.window
    init = circuit.init_weights(0)

    def compiled():
        return compile(circuit, backend="brian2", seed=0, target=target).train(x, y, seed=0)

    order = np.random.default_rng(0).permutation(n)   # sample_order(n, 1, seed=0)

    def hand():
        return handwritten_fa(x[order], y[order], init, 0.001, T, target)

    sim = compiled()              # warm-up (and check they compute the same thing)
    hw = hand()
    err = max(np.max(np.abs(sim.weights[k] - hw[k])) for k in hw)
    t_c = timed(compiled, repeat)
    t_h = timed(hand, repeat)
    ref = compile(circuit, backend="reference", seed=0)
    t_r = timed(lambda: compile(circuit, backend="reference", seed=0).train(x, y, seed=0), repeat)
    del ref
    print(f"FA {'-'.join(map(str, sizes))}, T={T}, {n} samples, target={target}:")
    print(f"  neuro_pc compiled  {n / t_c:10.1f} samples/s  ({t_c:.2f} s)")
    print(f"  hand-written Brian2{n / t_h:10.1f} samples/s  ({t_h:.2f} s)")
    print(f"  reference (NumPy)  {n / t_r:10.1f} samples/s  ({t_r:.2f} s)")
    print(f"  time ratio compiled / hand-written: {t_c / t_h:.3f}x "
          f"(target <= 1.1x); max |dW| between them {err:.2e}")
    print(f"  ratio compiled Brian2 / reference time: {t_c / t_r:.1f}x")
    return t_c / t_h


def bench_standalone(n, runtime_targets, repeat):
    sizes = [784, 500, 10]
    circuit = mlp(sizes, rule="fa", eta=0.001)
    x, y = random_data(n, sizes[0], sizes[-1])
    times = {}
    for target in ("cpp_standalone",) + tuple(runtime_targets):
        sim = compile(circuit, backend="brian2", seed=0, target=target)
        t0 = time.perf_counter()
        sim.train(x, y, seed=0)  # first call: compiles (cython/C++)
        first = time.perf_counter() - t0
        times[target] = timed(
            lambda: compile(circuit, backend="brian2", seed=0, target=target).train(x, y, seed=0),
            repeat)
        print(f"FA 784-500-10, {n} samples, {target:14s}: {n / times[target]:8.1f} samples/s "
              f"({times[target]:.2f} s; first call incl. compilation {first:.1f} s)", flush=True)
    t_ref = timed(lambda: compile(circuit, backend="reference", seed=0).train(x, y, seed=0), 1)
    print(f"FA 784-500-10, {n} samples, reference     : {n / t_ref:8.1f} samples/s")
    for target in runtime_targets:
        print(f"  cpp_standalone speed-up over {target}: "
              f"{times[target] / times['cpp_standalone']:.1f}x (target >= 10x)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", nargs="+", default=["handwritten", "standalone"],
                    choices=["handwritten", "standalone"])
    ap.add_argument("--sizes", default="64-32-10", help="FA sizes for the hand-written part")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--target", nargs="+", default=["numpy", "cython"],
                    help="runtime target(s) for the hand-written comparison")
    ap.add_argument("--samples-large", type=int, default=500)
    ap.add_argument("--runtime-targets", nargs="+", default=["numpy", "cython"])
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions (best is kept)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split("-")]
    if "handwritten" in args.parts:
        for target in args.target:
            bench_handwritten(sizes, args.samples, target, args.repeat)
    if "standalone" in args.parts:
        bench_standalone(args.samples_large, args.runtime_targets, max(1, args.repeat - 2))


if __name__ == "__main__":
    main()
