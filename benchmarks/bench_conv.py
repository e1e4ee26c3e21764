"""Conv training throughput: the reference backend against a hand-written NumPy FA loop
and PyTorch (CPU), the same CNN, the same initial weights, the same sample order.

    .venv/bin/python benchmarks/bench_conv.py [--depth 4] [--batches 300] [--repeats 3]

The net is the CNN depth study's (``experiments/cnn_depth.toml``): ``depth`` 3x3 conv
layers of 8, 16, 16… channels (strides 2, 2, then 1; padding 1; He init), relu, a
linear readout, squared error, trained by feedback alignment (fixed random transposed
kernels carry the error back; the readout's error through a fixed random matrix),
batch 32, float32, on MNIST. Measured, each in a fresh process, interleaved over ``--repeats``
rounds (medians printed, each ratio the median of the rounds' ratios):

* **reference**: ``compile(cnn(...), "reference", dtype="float32")``, one ``present``
  per batch (what ``train`` does), the circuit's ``T = 2L + 1``-step window unrolled;
* **NumPy**: the same FA written by hand (im2col with ``sliding_window_view``, one
  BLAS product per batch element, col2im for the transposed convolutions), BLAS on
  the reference's thread count;
* **PyTorch**: ``conv2d`` with an autograd function whose input gradient is the
  transposed convolution with the fixed random kernel (``torch.nn.grad.conv2d_input``),
  SGD, one thread (as the reference; see benchmarks/bench_peers.py), if torch is
  installed (``benchmarks/peers_env.sh``: Python 3.11, CPU torch; never a dependency
  of neuro-pc).

The first batch is timed apart (warm-up). After training, each reports its test
accuracy on 2000 MNIST test images and the largest difference of its final kernels to
the reference's (all start from the same weights and see the same batches, so they
should agree to float32 rounding). Needs MNIST (``neuro-pc data fetch mnist``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"
BATCH, ETA, N_TEST = 32, 0.05, 2000


def arch(depth: int):
    channels = [8, 16] + [16] * max(0, depth - 2)
    strides = [2, 2] + [1] * max(0, depth - 2)
    return channels[:depth], strides[:depth]


def _circuit(depth: int):
    from neuro_pc.models import cnn

    ch, st = arch(depth)
    return cnn((1, 28, 28), ch, 10, strides=st, rule="fa", eta=ETA, act="relu", init="he")


def _data():
    import numpy as np

    from neuro_pc.data import load

    d = load("mnist", limit_test=N_TEST)
    return (d.x_train.astype(np.float32), np.eye(10, dtype=np.float32)[d.y_train],
            d.x_test.astype(np.float32), d.y_test)


def _start(depth: int):
    from neuro_pc.backends.base import sample_order

    return _circuit(depth).init_weights(0), sample_order(60000, 1, 0)


def _timed(step, batches, order, x, y):
    t0 = time.perf_counter()
    t1 = None
    for k in range(batches):
        idx = order[k * BATCH:(k + 1) * BATCH]
        step(x[idx], y[idx])
        if k == 0:
            t1 = time.perf_counter()
    return t1 - t0, time.perf_counter() - t1


def _save(weights: dict, path: str) -> None:
    import numpy as np

    np.savez(path, **{k: np.asarray(v, dtype=np.float32) for k, v in weights.items()})


# -- the workers -------------------------------------------------------------------------------

def work_reference(depth: int, batches: int, out: str) -> dict:
    from neuro_pc.backends import compile

    x, y, xt, yt = _data()
    w, order = _start(depth)
    sim = compile(_circuit(depth), backend="reference", weights=w, dtype="float32")
    with sim.blas_limits(BATCH):
        first, rest = _timed(lambda xb, yb: sim.present(xb, yb, train=True), batches, order,
                             x, y)
    _save(sim.weights, out)
    return {"first": first, "rest": rest, "accuracy": sim.evaluate(xt, yt)}


def work_numpy(depth: int, batches: int, out: str) -> dict:
    """FA on the same CNN, written by hand with NumPy."""
    import numpy as np

    x, y, xt, yt = _data()
    w, order = _start(depth)
    ch, st = arch(depth)
    shapes = [(1, 28, 28)]
    for c, s in zip(ch, st):
        _, H, W = shapes[-1]
        shapes.append((c, (H + 2 - 3) // s + 1, (W + 2 - 3) // s + 1))
    L = depth + 1
    P = {k: np.array(v, dtype=np.float32) for k, v in w.items()}

    def im2col(a, shape, s):               # (B, C*H*W) -> (B, C*9, H'*W')
        C, H, W = shape
        B = a.shape[0]
        a = np.pad(a.reshape(B, C, H, W), ((0, 0), (0, 0), (1, 1), (1, 1)))
        v = np.lib.stride_tricks.sliding_window_view(a, (3, 3), axis=(2, 3))[:, :, ::s, ::s]
        Ho, Wo = v.shape[2], v.shape[3]
        return np.ascontiguousarray(v.transpose(0, 1, 4, 5, 2, 3)).reshape(B, C * 9, Ho * Wo)

    def col2im(cols, shape, s, out_hw):     # the adjoint: (B, C*9, H'*W') -> (B, C*H*W)
        C, H, W = shape
        Ho, Wo = out_hw
        B = cols.shape[0]
        c6 = cols.reshape(B, C, 3, 3, Ho, Wo)
        img = np.zeros((B, C, H + 2, W + 2), np.float32)
        for u in range(3):
            for v in range(3):
                img[:, :, u:u + s * (Ho - 1) + 1:s, v:v + s * (Wo - 1) + 1:s] += c6[:, :, u, v]
        return img[:, :, 1:H + 1, 1:W + 1].reshape(B, -1)

    def step(xb, yb):
        B = xb.shape[0]
        r, cols, a = [xb], [], []
        for l in range(1, depth + 1):
            cl = im2col(r[-1], shapes[l - 1], st[l - 1])
            z = (P[f"W{l}"] @ cl).reshape(B, -1) + np.repeat(P[f"b{l}"][:, 0], cl.shape[2])
            cols.append(cl)
            a.append(z)
            r.append(np.maximum(z, 0))
        out = r[-1] @ P[f"W{L}"].T + P[f"b{L}"][:, 0]
        e = out - yb
        g = (e @ P[f"B{L - 1}"].T) * (a[-1] > 0)          # the readout's error, through B
        lr = ETA / B
        P[f"W{L}"] -= lr * (e.T @ r[-1])
        P[f"b{L}"] -= lr * e.sum(0)[:, None]
        for l in range(depth, 0, -1):
            g3 = g.reshape(B, shapes[l][0], -1)
            if l > 1:   # the error to layer l-1: the transposed conv with the fixed kernel
                back = col2im(np.matmul(P[f"B{l - 1}"].T, g3), shapes[l - 1], st[l - 1],
                              shapes[l][1:])
                g_next = back * (a[l - 2] > 0)
            P[f"W{l}"] -= lr * np.matmul(g3, cols[l - 1].transpose(0, 2, 1)).sum(0)
            P[f"b{l}"] -= lr * g3.sum(axis=(0, 2))[:, None]
            if l > 1:
                g = g_next

    from neuro_pc.backends import compile

    ref = compile(_circuit(depth), backend="reference", dtype="float32")
    with ref.blas_limits(BATCH):
        first, rest = _timed(step, batches, order, x, y)

    def predict(xs):
        out = []
        for s in range(0, len(xs), 500):
            h = xs[s:s + 500]
            for l in range(1, depth + 1):
                cl = im2col(h, shapes[l - 1], st[l - 1])
                h = np.maximum((P[f"W{l}"] @ cl).reshape(len(cl), -1)
                               + np.repeat(P[f"b{l}"][:, 0], cl.shape[2]), 0)
            out.append((h @ P[f"W{L}"].T + P[f"b{L}"][:, 0]).argmax(1))
        return np.concatenate(out)

    _save(P, out)
    return {"first": first, "rest": rest, "accuracy": float((predict(xt) == yt).mean())}


def work_torch(depth: int, batches: int, out: str) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F

    class FAConv(torch.autograd.Function):
        """conv2d (padding 1); backward: the input's gradient through the fixed kernel B."""

        @staticmethod
        def forward(ctx, x, W, b, B, stride):
            ctx.save_for_backward(x, W, B)
            ctx.stride = stride
            return F.conv2d(x, W, b, stride=stride, padding=1)

        @staticmethod
        def backward(ctx, g):
            x, W, B = ctx.saved_tensors
            s = ctx.stride
            gx = torch.nn.grad.conv2d_input(x.shape, B, g, stride=s, padding=1) \
                if ctx.needs_input_grad[0] else None
            gW = torch.nn.grad.conv2d_weight(x, W.shape, g, stride=s, padding=1)
            return gx, gW, g.sum((0, 2, 3)), None, None

    class FALinear(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, W, b, B):
            ctx.save_for_backward(x, B)
            return x @ W.T + b

        @staticmethod
        def backward(ctx, g):
            x, B = ctx.saved_tensors
            return g @ B.T, g.T @ x, g.sum(0), None

    torch.set_num_threads(int(os.environ.get("BENCH_TORCH_THREADS", "1")))
    x, y, xt, yt = _data()
    w, order = _start(depth)
    ch, st = arch(depth)
    L = depth + 1
    cin = [1] + ch[:-1]
    params, Ws, bs, Bs = [], [], [], []
    for l in range(1, depth + 1):
        Wl = torch.tensor(w[f"W{l}"].reshape(ch[l - 1], cin[l - 1], 3, 3), dtype=torch.float32,
                          requires_grad=True)
        bl = torch.zeros(ch[l - 1], requires_grad=True)
        Ws.append(Wl)
        bs.append(bl)
        params += [Wl, bl]
        if l > 1:
            Bs.append(torch.tensor(w[f"B{l - 1}"].reshape(ch[l - 1], cin[l - 1], 3, 3),
                                   dtype=torch.float32))
    WL = torch.tensor(w[f"W{L}"], dtype=torch.float32, requires_grad=True)
    bL = torch.zeros(10, requires_grad=True)
    BL = torch.tensor(w[f"B{L - 1}"], dtype=torch.float32)
    params += [WL, bL]
    opt = torch.optim.SGD(params, lr=ETA)
    x4 = torch.from_numpy(x).reshape(-1, 1, 28, 28)
    yt_ = torch.from_numpy(y)

    def net(xb, fa=True):
        h = xb
        for l in range(depth):
            if fa:   # the first layer's input needs no gradient: B1 is never used for it
                h = torch.relu(FAConv.apply(h, Ws[l], bs[l], Bs[l - 1] if l else Ws[0],
                                            st[l]))
            else:
                h = torch.relu(F.conv2d(h, Ws[l], bs[l], stride=st[l], padding=1))
        h = h.reshape(h.shape[0], -1)
        return FALinear.apply(h, WL, bL, BL) if fa else h @ WL.T + bL

    def step(xb, yb):
        outp = net(xb)
        loss = 0.5 * ((outp - yb) ** 2).sum() / xb.shape[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    first, rest = _timed(step, batches, torch.from_numpy(order), x4, yt_)
    with torch.no_grad():
        pred = net(torch.from_numpy(xt).reshape(-1, 1, 28, 28), fa=False).argmax(1).numpy()
    W = {f"W{l + 1}": Ws[l].detach().numpy().reshape(ch[l], -1) for l in range(depth)}
    W[f"W{L}"] = WL.detach().numpy()
    _save(W, out)
    return {"first": first, "rest": rest, "accuracy": float((pred == yt).mean()),
            "version": torch.__version__, "threads": torch.get_num_threads()}


WORKERS = {"reference": work_reference, "NumPy": work_numpy, "PyTorch": work_torch}


def worker(name: str, depth: int, batches: int, out: str) -> None:
    print("RESULT " + json.dumps(WORKERS[name](depth, batches, out)))


def measure(name: str, python: str, depth: int, batches: int, out: str) -> dict:
    proc = subprocess.run([python, str(Path(__file__).resolve()), "--worker", name,
                           "--depth", str(depth), "--batches", str(batches), "--out", out],
                          capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"error": tail}


def torch_python(explicit: str | None) -> str | None:
    for python in ([explicit] if explicit else []) + [str(PEERS_PYTHON), sys.executable]:
        if python and Path(python).exists() and subprocess.run(
                [python, "-c", "import torch"], capture_output=True).returncode == 0:
            return python
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--depth", type=int, default=4, help="conv layers (default 4)")
    ap.add_argument("--batches", type=int, default=300, help="batches of 32 (default 300)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--peers-python", default=None,
                    help=f"an interpreter with torch (default: {PEERS_PYTHON})")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.depth, args.batches, args.out)
        return 0
    import numpy as np

    from neuro_pc.data.store import DataNotFoundError, find

    try:
        find("mnist")
    except DataNotFoundError as exc:
        print(f"bench_conv: {exc}", file=sys.stderr)
        return 1
    ch, st = arch(args.depth)
    n = (args.batches - 1) * BATCH
    print(f"MNIST CNN: {args.depth} conv layers {ch} (strides {st}, 3x3, padding 1), relu, "
          f"linear readout; FA, batch {BATCH}, float32, {args.batches} batches (timed: the "
          f"last {args.batches - 1}, {n} samples), {args.repeats} interleaved rounds; load "
          f"average {os.getloadavg()[0]:.2f} at start")
    pythons = {"reference": sys.executable, "NumPy": sys.executable,
               "PyTorch": torch_python(args.peers_python)}
    if pythons["PyTorch"] is None:
        print("  PyTorch: not installed: run benchmarks/peers_env.sh (CPU torch, Python 3.11)")
        del pythons["PyTorch"]
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            res = {}
            for name, python in pythons.items():
                out = os.path.join(tmp, f"{name}-{k}.npz")
                r = res[name] = measure(name, python, args.depth, args.batches, out)
                if "error" in r:
                    print(f"  {name}: failed: {r['error']}")
                    continue
                r["rate"] = n / r["rest"]
                if name != "reference" and "reference" in res and "rate" in res["reference"]:
                    mine = np.load(out)
                    ref = np.load(os.path.join(tmp, f"reference-{k}.npz"))
                    r["kernel_diff"] = max(
                        float(np.abs(mine[key] - ref[key]).max() / np.abs(ref[key]).max())
                        for key in mine.files if key.startswith("W"))
            rounds.append(res)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")

    ok = [name for name in pythons if all("rate" in r.get(name, {}) for r in rounds)]
    print(f"  {'':10} {'samples/s (median, min-max)':>30}  accuracy  first batch  weights vs "
          "reference")
    for name in ok:
        rates = [r[name]["rate"] for r in rounds]
        last = rounds[-1][name]
        diff = f"{last['kernel_diff']:.1e} (max rel.)" if "kernel_diff" in last else "-"
        extra = f"  (torch {last['version']}, {last['threads']} thread)" if "version" in last \
            else ""
        print(f"  {name:10} {median(rates):9.0f} ({min(rates):6.0f}-{max(rates):6.0f})"
              f"  {100 * last['accuracy']:6.2f} %  {1000 * median([r[name]['first'] for r in rounds]):8.1f} ms"
              f"  {diff}{extra}")
    print("ratios (> 1: the reference is faster)")
    for other in ("NumPy", "PyTorch"):
        if "reference" in ok and other in ok:
            rs = [r["reference"]["rate"] / r[other]["rate"] for r in rounds]
            print(f"  reference / {other}: {median(rs):5.2f}x the samples/s (rounds "
                  f"{min(rs):.2f}-{max(rs):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
