"""Lava backend speed: compiled FA circuit vs a hand-written Lava network of the
same shape, floating_pt vs fixed_pt, and start-up cost per run.

    .venv/bin/python benchmarks/bench_lava.py [--samples 300] [--sizes 64 128 10]

* **compiled vs hand-written**: the same FA MLP (x, bias, h1, out populations;
  W1, b1, W2, b2 plastic; B1 fixed feedback) trained online on digits for
  ``--samples`` windows, once compiled from the IR and once as hand-written
  Lava processes (static classes, equations written in NumPy by hand), in the
  same script run; both time only ``run()`` (the simulation, Lava's compile and
  process start-up included) and check that they learn the same weights.
* **floating_pt vs fixed_pt**: inference steps/s of the compiled circuit.
* **start-up**: wall time of a one-window run (build + compile + start + stop).

Lava runs one OS process per Lava process, so steps/s depends on core count.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.process import Dense
from lava.proc.io.source import RingBuffer

from neuro_pc.backends import compile, sample_order
from neuro_pc.data import load_digits
from neuro_pc.models import mlp


# -- the hand-written network --------------------------------------------------------
class Layer(AbstractProcess):
    """kind: 'input' (r = stream), 'bias' (r = 1), 'hidden' (tanh, FA delta), 'out'."""

    def __init__(self, *, n: int, kind: str):
        super().__init__(n=n, kind=kind)
        self.ff = InPort(shape=(n,))
        self.fb = InPort(shape=(n,))
        self.st = InPort(shape=(n,))
        self.r_out = OutPort(shape=(n,))
        self.d_out = OutPort(shape=(n,))
        self.r = Var(shape=(n,), init=1.0 if kind == "bias" else 0.0)
        self.delta = Var(shape=(n,), init=0.0)


@implements(proc=Layer, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class LayerModel(PyLoihiProcessModel):
    ff: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    fb: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    st: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    r_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    d_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    r: np.ndarray = LavaPyType(np.ndarray, float)
    delta: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        kind = self.proc_params["kind"]
        if kind == "input":
            self.r = self.st.recv()
        elif kind == "hidden":
            a = self.ff.recv()
            fb = self.fb.recv()
            self.r = np.tanh(a)
            self.delta = fb * (1 - self.r ** 2)
        elif kind == "out":
            a = self.ff.recv()
            y = self.st.recv()
            self.r = a
            self.delta = self.r - y
        self.r_out.send(self.r)
        if kind in ("hidden", "out"):
            self.d_out.send(self.delta)


class FASynapse(AbstractProcess):
    """W with dw = -eta * post.delta * pre.r at the end of every window."""

    def __init__(self, *, weights: np.ndarray, T: int, eta: float):
        super().__init__(T=T, eta=eta)
        n_out, n_in = weights.shape
        self.s_in = InPort(shape=(n_in,))
        self.a_out = OutPort(shape=(n_out,))
        self.post = InPort(shape=(n_out,))
        self.W = Var(shape=weights.shape, init=weights)
        self.buf = Var(shape=(n_in,), init=0.0)


@implements(proc=FASynapse, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class FASynapseModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    post: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    W: np.ndarray = LavaPyType(np.ndarray, float)
    buf: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        self.a_out.send(self.W @ self.buf)
        self.buf = self.s_in.recv()
        delta = self.post.recv()
        if self.time_step % self.proc_params["T"] == 0:
            self.W = self.W - self.proc_params["eta"] * np.outer(delta, self.buf)


def hand_written_run(weights, x, y, T, eta):
    """Train the FA MLP by hand-written processes; returns (run seconds, W1, W2)."""
    n_in, n_h, n_out = x.shape[1], weights["W1"].shape[0], y.shape[1]
    L = {"x": Layer(n=n_in, kind="input"), "bias": Layer(n=1, kind="bias"),
         "h1": Layer(n=n_h, kind="hidden"), "out": Layer(n=n_out, kind="out")}
    sx = RingBuffer(data=np.repeat(x, T, axis=0).T)
    sy = RingBuffer(data=np.repeat(y, T, axis=0).T)
    sx.s_out.connect(L["x"].st)
    sy.s_out.connect(L["out"].st)
    syn = {}
    for name, src, tgt in (("W1", "x", "h1"), ("b1", "bias", "h1"), ("W2", "h1", "out"),
                           ("b2", "bias", "out")):
        s = FASynapse(weights=weights[name].copy(), T=T, eta=eta)
        L[src].r_out.connect(s.s_in)
        s.a_out.connect(L[tgt].ff)
        L[tgt].d_out.connect(s.post)
        syn[name] = s
    s.buf.init = np.ones(1)
    syn["b1"].buf.init = np.ones(1)
    B1 = Dense(weights=weights["B1"], num_message_bits=24)
    L["out"].d_out.connect(B1.s_in)
    B1.a_out.connect(L["h1"].fb)
    t0 = time.perf_counter()
    try:
        L["x"].run(condition=RunSteps(num_steps=len(x) * T), run_cfg=Loihi2SimCfg())
        dt = time.perf_counter() - t0
        W1, W2 = syn["W1"].W.get(), syn["W2"].W.get()
    finally:
        L["x"].stop()
    return dt, W1, W2


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 10])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    ds = load_digits()
    sizes = args.sizes
    x = ds.x_train[:, :sizes[0]]
    order = sample_order(len(x), 1, 0)[:args.samples]
    xs, ys = x[order], np.eye(10)[ds.y_train[order]][:, :sizes[-1]]
    c = mlp(sizes, rule="fa", eta=0.01)
    T = c.schedule.window
    steps = len(xs) * T
    print(f"FA MLP {sizes}, T={T}, {len(xs)} samples = {steps} steps per run")

    w0 = compile(c, "reference", seed=0).weights
    t_compiled, t_hand = [], []
    for _ in range(args.repeats):     # alternate, keep the best of each (noisy on few cores)
        sim = compile(c, "lava", w0, seed=0, tag="floating_pt")
        sim.run_windows(xs, ys, train=True)
        t_compiled.append(sim.last_run["run_s"])
        t, W1, W2 = hand_written_run(w0, xs, ys, T, 0.01)
        t_hand.append(t)
    print("  compiled run times:", " ".join(f"{t:.2f}" for t in t_compiled),
          "| hand-written:", " ".join(f"{t:.2f}" for t in t_hand))
    t_compiled, t_hand = min(t_compiled), min(t_hand)
    same = np.allclose(W1, sim.weights["W1"], rtol=1e-9, atol=1e-12) and \
        np.allclose(W2, sim.weights["W2"], rtol=1e-9, atol=1e-12)
    print(f"train  compiled  : {t_compiled:7.3f} s  {steps / t_compiled:8.0f} steps/s")
    print(f"train  hand-made : {t_hand:7.3f} s  {steps / t_hand:8.0f} steps/s  "
          f"(same weights: {same})")
    print(f"ratio compiled / hand-written time: {t_compiled / t_hand:.2f}x")

    for tag_name in ("floating_pt", "fixed_pt"):
        s = compile(c, "lava", sim.weights, seed=0, tag=tag_name)
        s.run_windows(xs, None, train=False)
        r = s.last_run
        print(f"infer  {tag_name:11s}: {r['run_s']:7.3f} s  {r['steps'] / r['run_s']:8.0f} steps/s")

    for tag_name in ("floating_pt", "fixed_pt"):
        s = compile(c, "lava", sim.weights, seed=0, tag=tag_name)
        t0 = time.perf_counter()
        s.run_windows(xs[:1], None, train=False)
        print(f"start-up per run ({tag_name}, 1 window, build+compile+start+stop): "
              f"{time.perf_counter() - t0:.3f} s")


if __name__ == "__main__":
    main()
