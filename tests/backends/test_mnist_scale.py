"""Every backend at MNIST size (slow): a 784-500-10 FA circuit trained online on
MNIST samples equals the reference on Brian2 (cython, cpp_standalone; 200 samples)
and on Lava floating_pt (the first 20: Lava's CPU simulator moves the 392k-weight
plastic block at a few steps per second on 2 shared cores); a 784-500-10 spiking FA circuit gives the same spike trains on
Brian2 and Lava as on the reference. Needs MNIST (NEURO_PC_DATA; CI fails without)."""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from neuro_pc.backends import compile
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.models import mlp
from neuro_pc.models.spiking import Trace, spike_variables, spiking_mlp

pytestmark = pytest.mark.slow
N_TRAIN, N_TEST = 200, 20     # a few hundred online windows of 784-500-10


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    from neuro_pc.data import load

    d = load("mnist", limit_train=N_TRAIN, limit_test=N_TEST)
    return d.x_train, d.one_hot(d.y_train), d.x_test


N_LAVA = 20


@pytest.fixture(scope="module")
def reference(mnist):
    """Per number of training samples: the circuit, the trained reference, its readouts."""
    x, y, xt = mnist
    circuit = mlp([784, 500, 10], rule="fa", act="relu", eta=0.01)
    out = {}
    for n in (N_TRAIN, N_LAVA):
        ref = ReferenceSimulator(circuit, seed=0).train(x[:n], y[:n], epochs=1, seed=1)
        out[n] = (circuit, ref,
                  np.concatenate([ref.present(r[None], None, train=False) for r in xt]))
    return out


def _rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


@pytest.mark.parametrize("backend, options", [
    ("brian2", {"target": "cython"}), ("brian2", {"target": "cpp_standalone"}),
    pytest.param("lava", {"tag": "floating_pt"}, marks=pytest.mark.lava)],
    ids=["brian2-cython", "brian2-cpp_standalone", "lava-floating_pt"])
def test_784_500_10_fa_equals_the_reference(mnist, reference, backend, options):
    if backend == "lava" and importlib.util.find_spec("lava") is None:
        pytest.skip("needs lava-nc 0.10 on Python 3.10 (the lava extra)")
    x, y, xt = mnist
    n = N_LAVA if backend == "lava" else N_TRAIN
    circuit, ref, readouts = reference[n]
    other = compile(circuit, backend, seed=0, **options).train(x[:n], y[:n], epochs=1, seed=1)
    init = circuit.init_weights(0)
    assert np.abs(ref.weights["W1"] - init["W1"]).max() > 1e-4      # it learned
    for k, w in ref.weights.items():
        assert _rel(other.weights[k], w) < 1e-6, k
    if backend == "lava":   # the rows one after the other in one run: one network build
        got = other.present(xt, None, train=False)
    else:                   # Brian2 presents one sample per call
        got = np.concatenate([other.present(r[None], None, train=False) for r in xt])
    assert _rel(got, readouts) < 1e-6


@pytest.mark.parametrize("backend, options", [
    ("brian2", {"target": "numpy"}),
    pytest.param("lava", {"tag": "floating_pt"}, marks=pytest.mark.lava)],
    ids=["brian2-numpy", "lava-floating_pt"])
def test_784_500_10_spike_trains_equal_the_reference(mnist, backend, options):
    if backend == "lava" and importlib.util.find_spec("lava") is None:
        pytest.skip("needs lava-nc 0.10 on Python 3.10 (the lava extra)")
    x, y, _ = mnist
    circuit = spiking_mlp([784, 500, 10], rule="fa", window=16, eta=0.01,
                          trace=Trace(decay=math.exp(-1 / 4), impulse=0.25,
                                      window_reset=False))
    spikes = spike_variables(circuit)
    ref = ReferenceSimulator(circuit, seed=0, record=spikes)
    other = compile(circuit, backend, seed=0, record=spikes, **options)
    total = 0
    for i in range(3):      # training windows: the spikes after each update too
        ref.present(x[i:i + 1], y[i:i + 1], train=True)
        other.present(x[i:i + 1], y[i:i + 1], train=True)
        for p, v in spikes:
            want = ref.monitor[f"{p}.{v}"]
            got = np.asarray(other.monitor[f"{p}.{v}"]).reshape(want.shape)
            np.testing.assert_array_equal(got, want, err_msg=f"sample {i}: {p}.{v}")
            total += int(want.sum())
    assert total > 100          # the trains are not empty
