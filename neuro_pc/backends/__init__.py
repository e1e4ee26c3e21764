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
    """The simulator class of ``backend``, importing its module on first use.

    Parameters
    ----------
    backend : str
        A key of :data:`BACKENDS`: ``"reference"``, ``"brian2"`` or ``"lava"``.

    Returns
    -------
    type[Simulator]
        The backend's :class:`~neuro_pc.backends.base.Simulator` subclass.

    Raises
    ------
    ValueError
        For an unknown ``backend``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    module, cls = BACKENDS[backend]
    return getattr(importlib.import_module(module), cls)


def compile(circuit, backend: str = "reference", weights=None, **options) -> Simulator:
    """Compile ``circuit`` (with optional initial ``weights``) for ``backend``.

    Parameters
    ----------
    circuit : Circuit
        The circuit to compile; the simulator validates it.
    backend : str, default "reference"
        ``"reference"``, ``"brian2"`` or ``"lava"`` (:func:`simulator_class`).
    weights : dict of str to numpy.ndarray, optional
        Initial weights ``{projection: (n_target, n_source)}``; the projections
        not given are initialised from the circuit (seeded).
    **options
        Keyword options of the backend's simulator class (``seed``, ``masks``,
        and the backend's own).

    Returns
    -------
    Simulator
        The compiled simulator.

    Raises
    ------
    ValueError
        For an unknown ``backend``.
    CircuitError
        For a circuit that does not validate, and for weights of unknown
        projections or of the wrong shape.
    NonFiniteError
        For given weights that hold NaN or inf.
    """
    return simulator_class(backend)(circuit, weights, **options)


__all__ = ["BACKENDS", "NonFiniteError", "Simulator", "compile", "sample_order",
           "simulator_class"]
