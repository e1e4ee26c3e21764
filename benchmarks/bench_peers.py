"""The reference backend against hand-written and library peers on MNIST.

    .venv/bin/python benchmarks/bench_peers.py [--batches N] [--peers-python PATH]

One epoch of MNIST (60000 samples, batch 32, the same sample order and the
same initial weights everywhere) through a 784-256-10 tanh network with a
linear output and squared error:

* **FA**: the reference (float32 and float64) against a hand-written NumPy
  loop (float32 and float64) and against PyTorch (CPU) with a hand-written
  feedback-alignment autograd function;
* **PC** (discriminative, Whittington & Bogacz 2017): the reference (float32)
  against pcx (JAX) with the same number of inference steps (20) and rates.

Each measurement runs in a fresh process (so peak memory is its own, and no
library's thread pool competes with another's): the training loop is timed
without its first batch (JAX's compilation, PyTorch's and BLAS's warm-up are
reported apart), then the test accuracy is measured. Printed: samples/s,
accuracy, peak resident memory, the ratios, and the machine's matmul limit
for this network (its training FLOPs per sample against the rate of a large
float32 matmul) with the reference's distance to it.

Peers live in their own environment, never in neuro-pc's dependencies:
``benchmarks/peers_env.sh`` makes ``benchmarks/.venv-peers`` (Python 3.11,
torch CPU, jax, pcx). A missing peer is reported with how to install it.
Needs MNIST (``neuro-pc data fetch mnist``, docs/data.md).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"
SIZES = [784, 256, 10]
BATCH = 32
ETA = {"fa": 0.02, "pc": 0.02}
GAMMA, RELAX = 0.2, 20          # PC: inference rate and steps (the same for pcx)
INSTALL = {"torch": "benchmarks/peers_env.sh (torch==2.13.0, the CPU build, Python 3.11)",
           "pcx": "benchmarks/peers_env.sh (jax and pcx, Python 3.11)"}


# -- what every worker shares ------------------------------------------------------------------

def _data(dtype):
    import numpy as np

    from neuro_pc.data import load

    d = load("mnist")
    return (d.x_train.astype(dtype), np.eye(10, dtype=dtype)[d.y_train],
            d.x_test.astype(dtype), d.y_test)


def _start(rule: str):
    """Initial weights (the reference's draw for seed 0) and the sample order."""
    from neuro_pc.backends.base import sample_order
    from neuro_pc.models import mlp

    return mlp(SIZES, rule=rule, eta=ETA[rule]).init_weights(0), sample_order(60000, 1, 0)


def _rss_mb() -> float:
    """The resident memory now (MB); also resets the peak (``VmHWM``, Linux), so
    that :func:`_peak_mb` afterwards is the peak from this point on."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def _peak_mb() -> float:
    """The peak resident memory (MB) since the last :func:`_rss_mb`."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(step, batches, order, x, y) -> tuple[float, float]:
    """Run ``step(xb, yb)`` over the batches of ``order``; returns (seconds of the
    first batch, seconds of the others)."""
    t0 = time.perf_counter()
    t1 = None
    for k in range(batches):
        idx = order[k * BATCH:(k + 1) * BATCH]
        step(x[idx], y[idx])
        if k == 0:
            t1 = time.perf_counter()
    return t1 - t0, time.perf_counter() - t1


# -- the workers -------------------------------------------------------------------------------

def work_reference(rule: str, dtype: str, batches: int) -> dict:
    from neuro_pc.backends import compile
    from neuro_pc.models import mlp

    x, y, xt, yt = _data(dtype)
    w, order = _start(rule)
    circuit = mlp(SIZES, rule=rule, eta=ETA[rule], gamma=GAMMA, relax_steps=RELAX)
    sim = compile(circuit, backend="reference", weights=w, dtype=dtype)
    base = _rss_mb()
    with sim.blas_limits(BATCH):   # what sim.train does: BLAS threads as train() sets them
        first, rest = _timed(lambda xb, yb: sim.present(xb, yb, train=True), batches, order,
                             x, y)
    return {"first": first, "rest": rest, "accuracy": sim.evaluate(xt, yt), "base_mb": base,
            "window_steps": circuit.schedule.window, "blas_threads": _blas_threads(sim)}


def _blas_threads(sim=None):
    """BLAS's thread count (inside ``sim``'s training context when given)."""
    import contextlib

    from threadpoolctl import threadpool_info

    with sim.blas_limits(BATCH) if sim is not None else contextlib.nullcontext():
        return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"),
                   default=None)


def work_numpy_fa(dtype: str, batches: int) -> dict:
    import numpy as np

    x, y, xt, yt = _data(dtype)
    w, order = _start("fa")
    W1, W2, B1 = (np.array(w[k], dtype=dtype) for k in ("W1", "W2", "B1"))
    b1, b2 = np.zeros(SIZES[1], dtype), np.zeros(SIZES[2], dtype)
    lr = ETA["fa"] / BATCH

    def step(xb, yb):   # what a researcher writes by hand
        nonlocal W1, b1, W2, b2
        h = np.tanh(xb @ W1.T + b1)
        e = h @ W2.T + b2 - yb
        d = (e @ B1.T) * (1 - h * h)
        W2 -= lr * (e.T @ h)
        b2 -= lr * e.sum(0)
        W1 -= lr * (d.T @ xb)
        b1 -= lr * d.sum(0)

    base = _rss_mb()
    from neuro_pc.backends import compile
    from neuro_pc.models import mlp

    # the BLAS threads the reference uses for this network and batch (a fair
    # comparison of the code: the same library, the same threads)
    ref = compile(mlp(SIZES, rule="fa"), backend="reference", dtype=dtype)
    with ref.blas_limits(BATCH):
        first, rest = _timed(step, batches, order, x, y)
    pred = (np.tanh(xt @ W1.T + b1) @ W2.T + b2).argmax(1)
    return {"first": first, "rest": rest, "accuracy": float((pred == yt).mean()),
            "base_mb": base, "blas_threads": _blas_threads(ref)}


def work_torch_fa(batches: int) -> dict:
    import numpy as np
    import torch

    class FALinear(torch.autograd.Function):
        """y = x Wᵀ + b; backward sends the error through the fixed ``B`` instead of ``Wᵀ``."""

        @staticmethod
        def forward(ctx, x, W, b, B):
            ctx.save_for_backward(x, B)
            return x @ W.T + b

        @staticmethod
        def backward(ctx, g):
            x, B = ctx.saved_tensors
            gx = g @ B.T if ctx.needs_input_grad[0] else None
            return gx, g.T @ x, g.sum(0), None

    # the reference's thread count for this network and batch (one: see
    # docs/backends/reference.md); with its default of one thread per core PyTorch
    # was 30-50x slower on this shared machine (its threads wait on each other)
    torch.set_num_threads(int(os.environ.get("BENCH_TORCH_THREADS", "1")))
    x, y, xt, yt = _data(np.float32)
    w, order = _start("fa")
    W1, W2 = (torch.tensor(w[k], dtype=torch.float32, requires_grad=True) for k in ("W1", "W2"))
    b1, b2 = (torch.zeros(n, requires_grad=True) for n in SIZES[1:])
    B1 = torch.tensor(w["B1"], dtype=torch.float32)
    opt = torch.optim.SGD([W1, b1, W2, b2], lr=ETA["fa"])
    x, y = torch.from_numpy(x), torch.from_numpy(y)

    def step(xb, yb):
        h = torch.tanh(xb @ W1.T + b1)
        out = FALinear.apply(h, W2, b2, B1)
        loss = 0.5 * ((out - yb) ** 2).sum() / xb.shape[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    base = _rss_mb()
    first, rest = _timed(step, batches, torch.from_numpy(order), x, y)
    with torch.no_grad():
        pred = (torch.tanh(torch.from_numpy(xt) @ W1.T + b1) @ W2.T + b2).argmax(1).numpy()
    return {"first": first, "rest": rest, "accuracy": float((pred == yt).mean()),
            "base_mb": base, "version": torch.__version__, "threads": torch.get_num_threads()}


def work_pcx_pc(batches: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import pcx
    import pcx.functional as pxf
    import pcx.nn as pxnn
    import pcx.predictive_coding as pxc
    import pcx.utils as pxu

    class Net(pxc.EnergyModule):
        """mu1 = W1 x + b1 (value x1), mu_out = W2 tanh(x1) + b2, output clamped to y."""

        def __init__(self, w):
            super().__init__()
            self.l1, self.l2 = pxnn.Linear(784, 256), pxnn.Linear(256, 10)
            for layer, W in ((self.l1, "W1"), (self.l2, "W2")):
                layer.nn.weight.set(jnp.asarray(w[W], dtype=jnp.float32))
                layer.nn.bias.set(jnp.zeros(layer.nn.weight.get().shape[0], jnp.float32))
            self.v1, self.v2 = pxc.Vode(), pxc.Vode()
            self.v2.h.frozen = True

        def __call__(self, x, y=None):
            h = self.v1(self.l1(x))
            out = self.v2(self.l2(jnp.tanh(h)))
            if y is not None:
                self.v2.set("h", y)
            return self.v2.get("u")

    vmask = pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0))

    @pxf.vmap(vmask, in_axes=(0, 0), out_axes=0)
    def forward(x, y, *, model):
        return model(x, y)

    @pxf.vmap(vmask, in_axes=(0,), out_axes=0)
    def forward_eval(x, *, model):
        return model(x, None)

    @pxf.vmap(vmask, in_axes=(0,), out_axes=(None, 0), axis_name="batch")
    def energy(x, *, model):
        y_ = model(x, None)
        return jax.lax.psum(model.energy(), "batch"), y_

    @pxf.jit()
    def train_on_batch(x, y, *, model, optim_w, optim_h):
        model.train()
        with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
            forward(x, y, model=model)
        optim_h.init(pxu.M(pxc.VodeParam)(model))
        for _ in range(RELAX):
            with pxu.step(model, clear_params=pxc.VodeParam.Cache):
                _, g = pxf.value_and_grad(
                    pxu.M_hasnot(pxc.VodeParam, frozen=True).to([False, True]),
                    has_aux=True)(energy)(x, model=model)
            optim_h.step(model, g["model"], allow_none=True)
        optim_h.clear()
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            _, g = pxf.value_and_grad(pxu.M(pxnn.LayerParam).to([False, True]),
                                      has_aux=True)(energy)(x, model=model)
        optim_w.step(model, g["model"])

    @pxf.jit()
    def predict(x, *, model):
        model.eval()
        with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
            return forward_eval(x, model=model).argmax(axis=-1)

    x, y, xt, yt = _data(np.float32)
    w, order = _start("pc")
    model = Net(w)
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(jnp.zeros((BATCH, 784)), None, model=model)
    optim_h = pxu.Optim(lambda: optax.sgd(GAMMA))
    optim_w = pxu.Optim(lambda: optax.sgd(ETA["pc"] / BATCH), pxu.M(pxnn.LayerParam)(model))

    def step(xb, yb):
        train_on_batch(jnp.asarray(xb), jnp.asarray(yb), model=model, optim_w=optim_w,
                       optim_h=optim_h)
        jax.block_until_ready(model.l1.nn.weight.get())

    base = _rss_mb()
    first, rest = _timed(step, batches, order, x, y)
    preds = []
    for s in range(0, len(xt), BATCH):   # the vodes keep the training batch's shape: pad
        xb = xt[s:s + BATCH]
        pad = np.concatenate([xb, np.zeros((BATCH - len(xb), xb.shape[1]), xb.dtype)])
        preds.append(np.asarray(predict(jnp.asarray(pad), model=model))[:len(xb)])
    return {"first": first, "rest": rest, "accuracy": float((np.concatenate(preds) == yt).mean()),
            "base_mb": base, "version": f"pcx {getattr(pcx, '__version__', '0.6.x')}, "
                                      f"jax {jax.__version__}"}


def work_matmul() -> dict:
    """The best rate of a 2048x2048 float32 matmul (numpy's BLAS, this process)."""
    import numpy as np

    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    best = min(_time(lambda: a @ a) for _ in range(7))
    return {"gflops": 2 * 2048 ** 3 / best / 1e9, "first": 0.0, "rest": best, "base_mb": _rss_mb()}


def _time(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


WORKERS = {
    "reference FA float32": lambda n: work_reference("fa", "float32", n),
    "reference FA float64": lambda n: work_reference("fa", "float64", n),
    "NumPy FA float32": lambda n: work_numpy_fa("float32", n),
    "NumPy FA float64": lambda n: work_numpy_fa("float64", n),
    "PyTorch FA": work_torch_fa,
    "reference PC float32": lambda n: work_reference("pc", "float32", n),
    "pcx PC": work_pcx_pc,
    "matmul": lambda n: work_matmul(),
}
PEER_OF = {"PyTorch FA": "torch", "pcx PC": "pcx"}


def worker(name: str, batches: int) -> None:
    out = WORKERS[name](batches)
    out["peak_mb"] = _peak_mb()
    print("RESULT " + json.dumps(out))


# -- the parent: one process per measurement, then the table -----------------------------------

def measure(name: str, python: str, batches: int) -> dict:
    proc = subprocess.run([python, str(Path(__file__).resolve()), "--worker", name,
                           "--batches", str(batches)], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"error": tail}


def peer_python(args, peer: str) -> tuple[str | None, str]:
    """The interpreter that has ``peer`` importable, or None and why not."""
    for python in ([args.peers_python] if args.peers_python else []) + [str(PEERS_PYTHON),
                                                                         sys.executable]:
        if python and Path(python).exists():
            ok = subprocess.run([python, "-c", f"import {peer}"], capture_output=True)
            if ok.returncode == 0:
                return python, ""
    return None, f"peer {peer} not installed: run {INSTALL[peer]}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=60000 // BATCH,
                    help="batches of 32 to train (default: one epoch, 1875)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="rounds of every measurement, interleaved; medians are printed "
                         "and each ratio is the median of the rounds' ratios (default 3)")
    ap.add_argument("--peers-python", default=None,
                    help=f"interpreter with torch / jax / pcx (default: {PEERS_PYTHON})")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.batches)
        return 0
    from neuro_pc.data.store import DataNotFoundError, find

    try:
        find("mnist")
    except DataNotFoundError as exc:
        print(f"bench_peers: {exc}", file=sys.stderr)
        return 1
    n = (args.batches - 1) * BATCH
    print(f"MNIST 784-256-10 tanh, batch {BATCH}, {args.batches} batches (timed: the last "
          f"{args.batches - 1}, {n} samples), {args.repeats} interleaved rounds; load average "
          f"{os.getloadavg()[0]:.2f} at start")
    pythons, rounds = {}, []
    for name in WORKERS:
        pythons[name] = sys.executable
        if name in PEER_OF:
            pythons[name], why = peer_python(args, PEER_OF[name])
            if pythons[name] is None:
                print(f"  {name:22} {why}")
    for _ in range(args.repeats):
        res = {}
        for name, python in pythons.items():
            if python is None:
                continue
            r = res[name] = measure(name, python, args.batches)
            if "error" in r:
                print(f"  {name:22} failed: {r['error']}")
            elif name != "matmul":
                r["rate"] = n / r["rest"]
        rounds.append(res)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")

    ok = [name for name in pythons if name != "matmul" and rounds and
          all("rate" in r.get(name, {}) for r in rounds)]
    print(f"  {'':22} {'samples/s (median, min-max)':>30}  accuracy   peak memory   first batch")
    for name in ok:
        rates = [r[name]["rate"] for r in rounds]
        last = rounds[-1][name]
        extra = f"  ({last['version']})" if "version" in last else ""
        print(f"  {name:22} {median(rates):9.0f} ({min(rates):6.0f}-{max(rates):6.0f})"
              f"  {100 * last['accuracy']:6.2f} %  {median([r[name]['peak_mb'] for r in rounds]):5.0f}"
              f" MB (+{median([r[name]['peak_mb'] - r[name]['base_mb'] for r in rounds]):3.0f})"
              f"  {1000 * median([r[name]['first'] for r in rounds]):8.1f} ms{extra}")

    def ratio(a, b):
        if a in ok and b in ok:
            rs = [r[a]["rate"] / r[b]["rate"] for r in rounds]
            acc = rounds[-1][a]["accuracy"] - rounds[-1][b]["accuracy"]
            print(f"  {a} / {b}: {median(rs):5.2f}x the samples/s (rounds {min(rs):.2f}-"
                  f"{max(rs):.2f}; accuracy {100 * acc:+.2f} points)")

    print("ratios (> 1: the reference is faster)")
    ratio("reference FA float32", "NumPy FA float32")
    ratio("reference FA float64", "NumPy FA float64")
    ratio("reference FA float32", "NumPy FA float64")
    ratio("reference FA float32", "PyTorch FA")
    ratio("reference PC float32", "pcx PC")
    mm = [r["matmul"]["gflops"] for r in rounds if "gflops" in r.get("matmul", {})]
    if mm and "reference FA float32" in ok:
        h, o = SIZES[1], SIZES[2]
        # forward W1, W2; error through B1; the weight gradients of W1 and W2 (2 flops a MAC)
        flops = 2 * (2 * SIZES[0] * h + 2 * h * o + o * h)
        limits = [r["matmul"]["gflops"] * 1e9 / flops for r in rounds]
        fracs = [lim / r["reference FA float32"]["rate"] for lim, r in zip(limits, rounds)]
        print(f"matmul limit: {median(mm):.1f} GFLOP/s (2048² float32, both cores) / "
              f"{flops / 1e6:.3f} MFLOP per sample = {median(limits):.0f} samples/s; the reference "
              f"FA float32 is {median(fracs):.2f}x below it (rounds {min(fracs):.2f}-{max(fracs):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
