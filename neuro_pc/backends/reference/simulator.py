"""The reference backend: the semantics of ``docs/semantics.md``, executed in NumPy.

It is the oracle every other backend is tested against. ``batch_size=1`` is
the online regime every backend shares; ``batch_size>1`` is the *batched*
regime (state arrays get a batch axis and each rule's update is the mean of
the per-sample updates): a different training regime, for fast sweeps.
"""
from __future__ import annotations

import numpy as np

from neuro_pc.backends.base import Simulator, streams_for
from neuro_pc.backends.reference.codegen import (conv_globals, fixed_wiring, function_globals,
                                                 generate_updates, generate_window,
                                                 generate_window_unrolled)
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

    blas_threads: how many threads BLAS may use while :meth:`train` and
    :meth:`predict` run: ``"auto"`` (default) is 1 when every matrix product of
    a window is small (below :attr:`SMALL_PRODUCT` multiply-adds at the batch
    size used), where waking a second thread costs more than it saves (and far
    more on a busy machine), else BLAS's own setting; an integer sets it; None
    leaves BLAS alone. The thread count changes the speed, not the numbers
    (OpenBLAS splits a product's output, never its sums).

    unrolled: run the window as :func:`~neuro_pc.backends.reference.codegen.generate_window_unrolled`
    (default, where it applies: no recording, no every-step rule, a window of
    at most :attr:`MAX_UNROLLED` steps): the same
    arithmetic, without values that nothing reads or that did not change. False
    runs the loop of :func:`~neuro_pc.backends.reference.codegen.generate_window`.
    The two give bit-identical states and weights.
    """

    backend = "reference"
    DTYPES = ("float64", "float32")
    #: multiply-adds of a window's largest product below which ``blas_threads="auto"`` is 1
    SMALL_PRODUCT = 2 ** 24
    #: longest window that is unrolled (a longer one runs as the loop: its code would be large)
    MAX_UNROLLED = 512

    def __init__(self, circuit: Circuit, weights=None, *, seed: int = 0, masks=None,
                 record: tuple[tuple[str, str], ...] | list = (), dtype="float64",
                 unrolled: bool = True, blas_threads="auto"):
        super().__init__(circuit, weights, seed=seed, masks=masks)
        if not (blas_threads is None or blas_threads == "auto" or (
                isinstance(blas_threads, int) and not isinstance(blas_threads, bool)
                and blas_threads >= 1)):
            raise ValueError(f"blas_threads must be 'auto', None or an integer >= 1, got "
                             f"{blas_threads!r}")
        self.blas_threads = blas_threads
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
        self.unrolled = bool(unrolled) and not self.record and not step_rules and \
            circuit.schedule.window <= self.MAX_UNROLLED
        #: the fast convolution of every conv projection (shared by the generated functions)
        self.convs = conv_globals(circuit)
        #: fixed projections whose weights are 0/1 wiring (identity, a selection),
        #: run as copies/slices (codegen.fixed_wiring); checked before every window
        self.wiring = fixed_wiring(circuit, self.weights, frozenset(self.masks))
        self._wired = {k: self.weights[k].copy() for k in self.wiring}
        self._generate()
        namespace = {**function_globals(), **self.convs}
        exec(compile(generate_updates(circuit), f"<neuro_pc updates {circuit.name}>", "exec"),
             namespace)
        self._updates = namespace["updates"]
        self._tf = {}
        #: per projection with the "muon" transform, its optimiser state
        self.muon: dict = {}
        for proj in circuit.plastic:
            for t in proj.rule.transforms:
                if t == "muon":
                    from neuro_pc.rules.muon import Muon

                    self.muon[proj.name] = Muon.from_rule(proj.rule.params,
                                                          self.weights[proj.name].shape)
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

    def _generate(self) -> None:
        """Generate and compile the window function(s) (``sources``, ``source``)."""
        circuit, masked = self.circuit, frozenset(self.masks)
        if self.unrolled:   # one function for training windows, one for inference
            self.sources = {t: generate_window_unrolled(circuit, masked, t, self.wiring)
                            for t in (1.0, 0.0)}
        else:
            self.sources = {None: generate_window(circuit, masked, self.record, self.wiring)}
        self._windows = {}
        for t, src in self.sources.items():
            namespace = {**function_globals(), **self.convs}
            exec(compile(src, f"<neuro_pc window {circuit.name} train={t}>", "exec"), namespace)
            self._windows[t] = namespace["window"]
        #: the source of the training window (the one window with ``unrolled=False``)
        self.source = self.sources.get(1.0, self.sources.get(None))

    def _check_wiring(self) -> None:
        """Weights run as wiring that were changed (replaced or edited in place)
        since the window was generated: generate it again with products for them."""
        changed = [k for k, w in self._wired.items()
                   if not np.array_equal(self.weights.get(k), w)]
        if changed:
            for k in changed:
                del self.wiring[k], self._wired[k]
            self._generate()

    def reset(self, batch: int = 1) -> None:
        """Set every state variable to its initial value, for ``batch`` samples."""
        self.state = {f"{p.name}.{v}": np.full((batch, p.size), float(p.init.get(v, 0.0)),
                                               dtype=self.dtype)
                      for p in self.circuit.populations for v in p.variables}

    def _training_inputs(self, x, y):
        return (np.asarray(x, dtype=self.dtype), np.asarray(y, dtype=self.dtype))

    def train(self, x, y=None, epochs: int = 1, seed: int = 0, batch_size: int = 1,
              progress: bool = False, callback=None):
        with self.blas_limits(batch_size):
            return super().train(x, y, epochs=epochs, seed=seed, batch_size=batch_size,
                                 progress=progress, callback=callback)

    def predict(self, x, batch_size: int = 256):
        with self.blas_limits(batch_size):
            return super().predict(x, batch_size=batch_size)

    def blas_limits(self, batch: int):
        """A context limiting BLAS's threads (see ``blas_threads``), or a no-op."""
        import contextlib

        threads = self.blas_threads
        if threads == "auto":
            largest = max((p_size(self.circuit, p) for p in self.circuit.projections),
                          default=0)
            threads = 1 if batch * largest < self.SMALL_PRODUCT else None
        if threads is None:
            return contextlib.nullcontext()
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:   # pragma: no cover - threadpoolctl comes with scikit-learn
            return contextlib.nullcontext()
        return threadpool_limits(threads, user_api="blas")

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
        if self._wired:
            self._check_wiring()
        t = 1.0 if train else 0.0
        window = self._windows[t] if self.unrolled else self._windows[None]
        window(self.state, self.weights, streams, t, bool(train if learn is None else learn),
               rec, self._tf)
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


def p_size(circuit: Circuit, proj) -> int:
    """Multiply-adds per sample of one projection's product (``n_target * n_source``;
    a convolution's ``O*H'*W'*C*kh*kw``)."""
    conv = circuit.conv_of(proj)
    if conv is not None:
        O, Ho, Wo = conv.out_shape
        return O * Ho * Wo * conv.patch
    return circuit.population(proj.target).size * circuit.population(proj.source).size
