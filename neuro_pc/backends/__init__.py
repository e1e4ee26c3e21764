"""Backends: each compiles a circuit into a :class:`~neuro_pc.backends.base.Simulator`.

``compile(circuit, backend="reference" | "brian2" | "lava", **options)``.
Backends consume the IR and never import each other.
"""
from __future__ import annotations

import importlib

from neuro_pc.backends.base import NonFiniteError, Simulator, sample_order

BACKENDS = {
    "reference": ("neuro_pc.backends.reference", "ReferenceSimulator"),
    "brian2": ("neuro_pc.backends.brian2", "Brian2Simulator"),
    "lava": ("neuro_pc.backends.lava", "LavaSimulator"),
}


def simulator_class(backend: str) -> type[Simulator]:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    module, cls = BACKENDS[backend]
    return getattr(importlib.import_module(module), cls)


def compile(circuit, backend: str = "reference", weights=None, **options) -> Simulator:
    """Compile ``circuit`` (with optional initial ``weights``) for ``backend``."""
    return simulator_class(backend)(circuit, weights, **options)


__all__ = ["BACKENDS", "NonFiniteError", "Simulator", "compile", "sample_order",
           "simulator_class"]
