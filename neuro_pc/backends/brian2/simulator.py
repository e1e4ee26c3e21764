"""The Brian2 backend's :class:`~neuro_pc.backends.base.Simulator`.

``Brian2Simulator(circuit, weights, seed=0, target="numpy")`` keeps the
weights and the state in NumPy between runs; every :meth:`train`,
:meth:`predict` or :meth:`present` builds the Brian2 network from them
(:func:`~.network.run_stream`), streams all its samples through ``TimedArray``
inputs in ONE ``run()`` and reads the weights and the state back. Online
(``batch_size=1``) only: the reference backend has the batched regime.
"""
from __future__ import annotations

import sys
from typing import Callable

import numpy as np

from neuro_pc.backends.base import (Simulator, check_readout, check_weights, inference_array,
                                    sample_order, streams_for, training_arrays)
from neuro_pc.backends.brian2.codegen import Brian2BackendError, generate
from neuro_pc.backends.brian2.network import TARGETS, run_stream
from neuro_pc.ir import Circuit


class Brian2Simulator(Simulator):
    """A circuit compiled to Brian2.

    target: ``"numpy"`` (default: no compilation, best for small circuits and
        short runs), ``"cython"`` (runtime code generation, compiled once per
        circuit and cached: long runs of mid-sized circuits) or
        ``"cpp_standalone"`` (one C++ build per call: long runs of large ones).
    record: ``(population, variable)`` pairs monitored at every step; after a
        call, :attr:`monitor` holds ``{"pop.var": (steps, 1, n)}`` of that call.
    build_dir: ``cpp_standalone`` build directory (default: one per circuit and
        mode in a temporary directory of this process, removed at exit; Brian2
        then recompiles only the sources that changed between calls).
    progress: default of :meth:`train`'s ``progress`` for the other calls.
    """

    backend = "brian2"

    def __init__(self, circuit: Circuit, weights=None, *, seed: int = 0, masks=None,
                 target: str = "numpy", record=(), build_dir: str | None = None, **options):
        if options:
            raise TypeError(f"Brian2Simulator got unknown option(s) {sorted(options)}; it takes "
                            "target=, record=, build_dir=")
        if target not in TARGETS:
            raise ValueError(f"unknown Brian2 target {target!r}; choose one of {TARGETS}")
        super().__init__(circuit, weights, seed=seed, masks=masks)
        self.target = target
        self.build_dir = build_dir
        self.record = tuple(tuple(r) for r in record)
        for pop, var in self.record:
            if var not in circuit.population(pop).variables:
                raise ValueError(f"cannot record {pop}.{var}: population {pop!r} has variables "
                                 f"{list(circuit.population(pop).variables)}")
        self.model = generate(self.circuit)
        self._tf = {}
        for proj in self.circuit.plastic:
            if "muon" in proj.rule.transforms:
                from neuro_pc.rules.muon import Muon

                self._tf[("muon", proj.name)] = Muon.from_rule(
                    proj.rule.params, (self.circuit.population(proj.target).size,
                                       self.circuit.population(proj.source).size)).step
        self.monitor: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.reset()

    # -- state ---------------------------------------------------------------------
    def reset(self, batch: int = 1) -> None:
        """Set every state variable to its initial value (``batch`` must be 1)."""
        _one(batch)
        self.state = {f"{p.name}.{v}": np.full((1, p.size), float(p.init.get(v, 0.0)))
                      for p in self.circuit.populations for v in p.variables}

    @property
    def readout_var(self) -> tuple[str, str]:
        last = self.circuit.populations[-1]
        return tuple(self.circuit.readout or (last.name, last.output))

    def describe(self) -> str:
        """The generated Brian2 equations and code."""
        return self.model.describe()

    # -- running -------------------------------------------------------------------
    def stream(self, x, y=None, train: bool = False, learn: bool | None = None,
               progress: bool = False, readout: bool = True) -> np.ndarray | None:
        """Run one window per row of ``x`` (targets ``y``, or zeros), in order, in
        one Brian2 run; learn at the end of every window if ``learn`` (default
        ``train``). Returns the readout at the end of every window ``(n, n_out)``
        (None if not ``readout``: no readout monitor, a little faster)."""
        streams = streams_for(self.circuit, x, y)
        n = next(iter(streams.values())).shape[0] if streams else 0
        if n == 0:
            return np.zeros((0, self.circuit.population(self.readout_var[0]).size))
        learn = bool(train if learn is None else learn)
        if learn and self.model.shared_kernels:
            from neuro_pc.backends.brian2.codegen import shared_kernel_error

            raise shared_kernel_error(self.circuit, self.model.shared_kernels[0])
        bar = None
        report = None
        if progress:
            bar, report = self._progress(n)
        try:
            result = run_stream(
                self.model, self.weights, self.masks,
                {k: v[0] for k, v in self.state.items()}, streams, train=bool(train),
                learn=learn, target=self.target, transforms=self._tf, record=self.record,
                readout=self.readout_var if readout else None, report=report, build_dir=self.build_dir)
        finally:
            if bar is not None:
                bar.close()
        self.state = {k: v[None, :] for k, v in result.state.items()}
        for k, w in result.weights.items():
            self.weights[k] = w
        self.monitor = {k: v[:, None, :] for k, v in result.monitor.items()}
        return result.readout

    def present(self, x, y=None, train: bool = True, learn: bool | None = None) -> np.ndarray:
        """One window for ONE sample (a Brian2 run of its own: slow; use
        :meth:`train`/:meth:`predict` for datasets). Returns the readout ``(1, n_out)``."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        _one(x.shape[0], what="present() got a batch of")
        return self.stream(x, y, train=train, learn=learn)

    def train(self, x: np.ndarray, y: np.ndarray | None = None, epochs: int = 1, seed: int = 0,
              batch_size: int = 1, progress: bool = False,
              callback: Callable[[int, "Simulator"], None] | None = None) -> "Brian2Simulator":
        """Online training over ``epochs`` passes in :func:`sample_order` — all
        samples streamed in one Brian2 run (one run per epoch if ``callback``)."""
        _one(batch_size, what="batch_size is")
        x, y = training_arrays(x, y, self.circuit)
        n = len(x)
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        order = sample_order(n, epochs, seed)
        if callback is None:
            if len(order):
                self.stream(x[order], y[order], train=True, progress=progress, readout=False)
                check_weights(self, epochs - 1, epochs, " (all epochs in one Brian2 run)")
            return self
        for epoch, idx in enumerate(order.reshape(epochs, n)):
            if n:
                self.stream(x[idx], y[idx], train=True, progress=progress, readout=False)
            check_weights(self, epoch, epochs)
            callback(epoch, self)
        return self

    def readouts(self, x: np.ndarray) -> np.ndarray:
        """Readout at the end of each sample's window, inference (no learning),
        streamed in one run: ``(n, n_out)``."""
        return self.stream(np.atleast_2d(np.asarray(x, dtype=np.float64)), None, train=False)

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Predicted classes, streamed in one run (``batch_size`` is accepted for
        interface compatibility and ignored: Brian2 runs one sample at a time)."""
        x = inference_array(x)
        if len(x) == 0:
            return np.zeros(0, dtype=int)
        return check_readout(self, self.readouts(x)).argmax(axis=1)

    def _announce_build(self, write) -> None:
        """One line before the first run of a compiled target, which shows nothing
        (the bar stays at 0 %) while Brian2 generates and compiles its code."""
        if getattr(self, "_announced", False) or self.target == "numpy":
            return
        self._announced = True
        what = {"cython": "compiling Cython code objects (the first time ~1-2 min; cached in "
                          "~/.cython/brian_extensions afterwards)",
                "cpp_standalone": "building the C++ standalone project (~1-2 min, cached per "
                                  "circuit)"}.get(self.target, f"building the {self.target} code")
        write(f"brian2: {self.circuit.name}: {what}...", file=sys.stderr)

    def _progress(self, n: int):
        if self.target == "cpp_standalone":
            self._announce_build(print)
            return None, "stderr"
        from tqdm.auto import tqdm

        self._announce_build(tqdm.write)
        bar = tqdm(total=n, desc=f"{self.circuit.name} [brian2/{self.target}]", unit="sample",
                   unit_scale=True, leave=False)

        def report(elapsed, completed, start, duration):
            bar.update(int(round(float(completed) * n)) - bar.n)

        return bar, report


def _one(batch: int, what: str = "batch is") -> None:
    if int(batch) != 1:
        raise Brian2BackendError(
            f"the Brian2 backend runs one sample at a time (online, batch_size=1); {what} "
            f"{batch}. For batched training (the mean update over a batch) use the reference "
            "backend's batched mode: compile(circuit, backend='reference').train(x, y, "
            "batch_size=...).")
