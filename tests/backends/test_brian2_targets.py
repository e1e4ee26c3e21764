"""Slow suite: the Brian2 cython and cpp_standalone targets equal the reference.

Run with ``.venv/bin/python -m pytest -m slow tests/backends/test_brian2_targets.py``.
First Cython compiles take minutes (then Brian2's cache serves them); every
cpp_standalone call is a C++ build (the per-process build directory makes the
second build of a circuit recompile only what changed).
"""
from __future__ import annotations

import numpy as np
import pytest

from neuro_pc.backends.brian2 import Brian2Simulator
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.models import shipped_circuits

pytestmark = pytest.mark.slow

RTOL = 1e-6


@pytest.fixture(scope="session")
def dataset():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8))
    y = np.eye(4)[rng.integers(0, 4, 60)]
    return x, y


@pytest.fixture(scope="session")
def trained_reference(dataset):
    """The reference after training, and its readouts on 12 samples, per circuit."""
    x, y = dataset
    out = {}
    for rule, circuit in shipped_circuits().items():
        ref = ReferenceSimulator(circuit, seed=1).train(x, y, seed=7)
        weights = {k: v.copy() for k, v in ref.weights.items()}
        state = {k: v.copy() for k, v in ref.state.items()}
        readouts = np.concatenate([ref.present(xx[None], None, train=False) for xx in x[:12]])
        out[rule] = (weights, state, readouts)
    return out


@pytest.mark.parametrize("target", ["cython", "cpp_standalone"])
@pytest.mark.parametrize("rule", sorted(shipped_circuits()))
def test_target_equals_reference(rule, target, dataset, trained_reference):
    x, y = dataset
    weights, state, readouts = trained_reference[rule]
    sim = Brian2Simulator(shipped_circuits()[rule], seed=1, target=target).train(x, y, seed=7)
    for k, w in weights.items():
        np.testing.assert_allclose(sim.weights[k], w, rtol=RTOL, atol=1e-12, err_msg=k)
    for k, s in state.items():
        np.testing.assert_allclose(sim.state[k], s, rtol=RTOL, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(sim.readouts(x[:12]), readouts, rtol=RTOL, atol=1e-12)


def test_runtime_device_restored_after_standalone(dataset):
    """A cpp_standalone build leaves Brian2 on the runtime device: numpy runs after it work."""
    import brian2

    x, y = dataset
    circuit = shipped_circuits()["fa"]
    Brian2Simulator(circuit, target="cpp_standalone").train(x[:5], y[:5])
    assert type(brian2.get_device()).__name__ == "RuntimeDevice"
    ref = ReferenceSimulator(circuit).train(x[:5], y[:5])
    sim = Brian2Simulator(circuit, target="numpy").train(x[:5], y[:5])
    for k, w in ref.weights.items():
        np.testing.assert_allclose(sim.weights[k], w, rtol=RTOL, atol=1e-12)
