"""The reference backend: the semantics of DESIGN.md, executed in NumPy.

It is the oracle every other backend is tested against. ``batch_size=1`` is
the online regime every backend shares; ``batch_size>1`` is the *batched*
regime (state arrays get a batch axis and each rule's update is the mean of
the per-sample updates): a different training regime, for fast sweeps.
"""
from __future__ import annotations

import numpy as np

from neuro_pc.backends.base import Simulator, streams_for
from neuro_pc.backends.reference.codegen import (function_globals, generate_updates,
                                                 generate_window, generate_window_unrolled)
from neuro_pc.ir import Circuit


def _unit_columns(w: np.ndarray) -> None:
    """Rescale every column of ``w`` to unit Euclidean norm, in place."""
    norms = np.linalg.norm(w, axis=0, keepdims=True)
    w /= np.where(norms > 0, norms, 1.0)


def _unit_rows(w: np.ndarray) -> None:
    """Rescale every row of ``w`` to unit Euclidean norm, in place."""
    norms = np.linalg.norm(w, axis=1, keepdims=True)
    w /= np.where(norms > 0, norms, 1.0)


class ReferenceSimulator(Simulator):
    """NumPy execution of a circuit (see :mod:`neuro_pc.backends.reference.codegen`).

    record: ``(population, variable)`` pairs to monitor at every step; after a
    call to :meth:`present` the trace of the last window is in :attr:`monitor`
    as ``{"pop.var": (T, B, n)}``.

    dtype: ``"float64"`` (default: the precision every equivalence test uses)
    or ``"float32"``: every array the simulator allocates - weights, masks,
    state, the data streams, every intermediate - has that dtype (weights given
    or drawn in float64 are rounded to it once). float32 halves memory traffic
    and doubles the BLAS rate; see docs/backends/reference.md for what it changes.

    unrolled: run the window as :func:`~neuro_pc.backends.reference.codegen.generate_window_unrolled`
    (default, where it applies: no recording, no every-step rule): the same
    arithmetic, without values that nothing reads or that did not change. False
    runs the loop of :func:`~neuro_pc.backends.reference.codegen.generate_window`.
    The two give bit-identical states and weights.
    """

    backend = "reference"
    DTYPES = ("float64", "float32")

    def __init__(self, circuit: Circuit, weights=None, *, seed: int = 0, masks=None,
                 record: tuple[tuple[str, str], ...] | list = (), dtype="float64",
                 unrolled: bool = True):
        super().__init__(circuit, weights, seed=seed, masks=masks)
        self.dtype = _dtype(dtype, self.DTYPES)
        self.weights = {k: np.ascontiguousarray(w, dtype=self.dtype)
                        for k, w in self.weights.items()}
        self.masks = {k: np.asarray(m, dtype=self.dtype) for k, m in self.masks.items()}
        self.record = tuple(tuple(r) for r in record)
        for pop, var in self.record:
            if var not in circuit.population(pop).variables:
                raise ValueError(f"cannot record {pop}.{var}: population {pop!r} has variables "
                                 f"{list(circuit.population(pop).variables)}")
        step_rules = any(p.rule.every_step for p in circuit.plastic)
        self.unrolled = bool(unrolled) and not self.record and not step_rules
        self.source = generate_window_unrolled(circuit, frozenset(self.masks)) \
            if self.unrolled else generate_window(circuit, frozenset(self.masks), self.record)
        namespace = function_globals()
        exec(compile(self.source, f"<neuro_pc window {circuit.name}>", "exec"), namespace)
        self._window = namespace["window"]
        namespace = function_globals()
        exec(compile(generate_updates(circuit), f"<neuro_pc updates {circuit.name}>", "exec"),
             namespace)
        self._updates = namespace["updates"]
        self._tf = {}
        #: per projection with the "muon" transform, its optimiser state
        self.muon: dict = {}
        for proj in circuit.plastic:
            for t in proj.rule.transforms:
                if t == "muon":
                    from neuro_pc.analysis.muon import Muon

                    p = proj.rule.params
                    rows, cols = self.weights[proj.name].shape
                    # with muon_lr, the orthogonalised update (~1 per singular
                    # direction) is scaled to that step, as in Keller Jordan's Muon
                    scale = (float(p["muon_lr"]) * max(1.0, rows / cols) ** 0.5
                             if "muon_lr" in p else "shape")
                    self.muon[proj.name] = Muon(beta=p.get("muon_beta", 0.95),
                                                steps=int(p.get("muon_steps", 5)), scale=scale)
                    self._tf[("muon", proj.name)] = self.muon[proj.name].step
                elif t == "unit_columns":
                    self._tf[("unit_columns", proj.name)] = _unit_columns
                elif t == "unit_rows":
                    self._tf[("unit_rows", proj.name)] = _unit_rows
        for name, m in self.masks.items():
            self._tf[("mask", name)] = m
        self.state: dict[str, np.ndarray] = {}
        self.monitor: dict[str, np.ndarray] = {}
        self.reset(1)

    def reset(self, batch: int = 1) -> None:
        """Set every state variable to its initial value, for ``batch`` samples."""
        self.state = {f"{p.name}.{v}": np.full((batch, p.size), float(p.init.get(v, 0.0)),
                                               dtype=self.dtype)
                      for p in self.circuit.populations for v in p.variables}

    def _training_inputs(self, x, y):
        return (np.asarray(x, dtype=self.dtype), np.asarray(y, dtype=self.dtype))

    def _ensure_batch(self, batch: int) -> None:
        if next(iter(self.state.values())).shape[0] != batch:
            self.reset(batch)

    def present(self, x, y=None, train=True, learn=None):
        """One window; ``train`` is the circuit's ``train`` scalar (targets clamp),
        ``learn`` (default: ``train``) whether the rules apply their updates."""
        streams = streams_for(self.circuit, x, y, self.dtype)
        batch = next(iter(streams.values())).shape[0] if streams else 1
        self._ensure_batch(batch)
        rec = [] if self.record else None
        self._window(self.state, self.weights, streams, 1.0 if train else 0.0,
                     bool(train if learn is None else learn), rec, self._tf)
        if rec is not None:
            self.monitor = {f"{p}.{v}": np.stack([r[k] for r in rec])
                            for k, (p, v) in enumerate(self.record)}
        pop, var = self.circuit.readout or (self.circuit.populations[-1].name,
                                            self.circuit.populations[-1].output)
        return self.state[f"{pop}.{var}"]

    def compute_updates(self, x, y) -> dict[str, np.ndarray]:
        """Each rule's batch-mean update after one window on ``(x, y)``, without
        applying it (weights unchanged). For alignment analysis."""
        self.present(x, y, train=True, learn=False)
        return self._updates(self.state, self.weights)


def _dtype(dtype, allowed) -> np.dtype:
    """``dtype`` as a NumPy dtype among ``allowed`` names; ValueError otherwise."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in allowed:
        raise ValueError(f"dtype must be one of {', '.join(map(repr, allowed))}, got {dtype!r}")
    return dt
