"""Slow suite: Brian2's device state after a cpp_standalone build. That the cython
and cpp_standalone targets equal the reference is the conformance suite's
(tests/conformance: every shipped rule, Muon and the language circuit).
First Cython compiles take minutes (then Brian2's cache serves them); every
cpp_standalone call is a C++ build.
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
