"""The simulation interface every backend returns from ``compile``.

A backend implements :meth:`Simulator.present` (run one presentation window
for a batch of samples, learning or not) and may override :meth:`train` and
:meth:`predict` to stream a whole dataset through one simulator run (Brian2,
Lava). Everything else (the sample order, evaluation, artifacts) is shared so
that backends given the same seed see the same samples in the same order.

Non-finite numbers are errors (:class:`~neuro_pc.numerics.NonFiniteError`):
NaN/inf in the arrays given to ``train``/``predict``/``evaluate``, and weights
that are non-finite at the end of an epoch (:func:`check_weights`, which every
backend's ``train`` calls) or at prediction.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

import numpy as np

from neuro_pc.ir import Artifact, Circuit, CircuitError, save_artifact
from neuro_pc.numerics import NonFiniteError, describe_nonfinite, first_nonfinite, require_finite


def sample_order(n: int, epochs: int, seed: int) -> np.ndarray:
    """The training order: one permutation of ``range(n)`` per epoch.

    The permutations are drawn from ``default_rng(seed)`` and concatenated, so
    backends given the same seed see the same samples in the same order.

    Parameters
    ----------
    n : int
        The number of samples.
    epochs : int
        The number of passes.
    seed : int
        The seed of the generator.

    Returns
    -------
    numpy.ndarray
        The sample indices, shape ``(epochs * n,)`` (empty for ``epochs=0``).
    """
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(n) for _ in range(epochs)]) if epochs else \
        np.zeros(0, dtype=int)


def streams_for(circuit: Circuit, x: np.ndarray, y: np.ndarray | None,
                dtype=np.float64) -> dict[str, np.ndarray]:
    """Map a batch to the circuit's streams.

    Parameters
    ----------
    circuit : Circuit
        The circuit whose ``streams`` (name to width) are fed.
    x : numpy.ndarray
        The inputs ``(B, n_in)`` (a 1-D sample is one row): stream ``"x"``.
    y : numpy.ndarray or None
        The targets ``(B, n_out)``: stream ``"y"``; None (i.e. at inference)
        feeds zeros.
    dtype : data-type, default numpy.float64
        The dtype of the arrays returned.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{stream: (B, width)}`` for every stream of the circuit.

    Raises
    ------
    CircuitError
        For a stream other than ``"x"`` and ``"y"`` (no data feeds it).
    ValueError
        For data whose width is not the stream's.
    """
    x = np.atleast_2d(np.asarray(x, dtype=dtype))
    out = {}
    for name, width in circuit.streams.items():
        if name == "x":
            arr = x
        elif name == "y":
            arr = np.zeros((x.shape[0], width), dtype=dtype) if y is None else \
                np.atleast_2d(np.asarray(y, dtype=dtype))
        else:
            raise CircuitError(f"circuit {circuit.name!r}: stream {name!r} has no data; the "
                               "simulators feed 'x' (inputs) and 'y' (targets)")
        if arr.shape[1] != width:
            raise ValueError(f"stream {name!r} of circuit {circuit.name!r} is {width} wide, the "
                             f"data has {arr.shape[1]} columns; reshape the data or the circuit")
        out[name] = arr
    return out


class Simulator(ABC):
    """A compiled circuit with its weights; the same interface on every backend.

    Parameters
    ----------
    circuit : Circuit
        The circuit; it is validated.
    weights : dict of str to numpy.ndarray, optional
        Initial weights ``{projection: (n_target, n_source)}``, finite; the
        others are the circuit's initialisation (:meth:`Circuit.init_weights`
        with ``seed``).
    seed : int, default 0
        The seed of the initial weights and the masks.
    masks : dict of str to numpy.ndarray, optional
        The masks of sparse projections (default drawn from the circuit with
        ``seed``).

    Attributes
    ----------
    circuit : Circuit
        The validated circuit.
    weights : dict of str to numpy.ndarray
        ``{projection: (n_target, n_source)}``: the live trained matrices.
    masks : dict of str to numpy.ndarray
        The masks of sparse projections.
    seed : int
        The seed.

    Raises
    ------
    CircuitError
        For weights of unknown projections or of the wrong shape.
    NonFiniteError
        For given weights that hold NaN or inf.
    """

    backend: str = "?"

    def __init__(self, circuit: Circuit, weights: dict[str, np.ndarray] | None = None, *,
                 seed: int = 0, masks: dict[str, np.ndarray] | None = None):
        self.circuit = circuit.validate()
        self.seed = int(seed)
        self.masks = dict(masks) if masks is not None else circuit.masks(self.seed)
        init = circuit.init_weights(self.seed)
        if weights is not None:
            unknown = set(weights) - set(init)
            if unknown:
                raise CircuitError(f"weights given for unknown projection(s) {sorted(unknown)}")
            for k, w in weights.items():
                if np.shape(w) != init[k].shape:
                    raise CircuitError(f"weights of {k!r} have shape {np.shape(w)}, the circuit "
                                       f"needs {init[k].shape} (n_target, n_source)")
                init[k] = np.array(w, dtype=np.float64)
                require_finite(init[k], f"the given weight matrix of projection {k!r}",
                               "give finite weights (a diverged run's artifact cannot be used)")
        self.weights: dict[str, np.ndarray] = init

    # -- what a backend provides ------------------------------------------------
    @abstractmethod
    def present(self, x: np.ndarray, y: np.ndarray | None = None, train: bool = True) -> np.ndarray:
        """Run one window for a batch; learn at its end if ``train``.

        Parameters
        ----------
        x : numpy.ndarray
            The inputs ``(B, n_in)``.
        y : numpy.ndarray, optional
            The targets ``(B, n_out)``.
        train : bool, default True
            Learn at the window's end.

        Returns
        -------
        numpy.ndarray
            The readout ``(B, n_readout)``.
        """

    # -- shared ------------------------------------------------------------------
    def train(self, x: np.ndarray, y: np.ndarray | None = None, epochs: int = 1, seed: int = 0,
              batch_size: int = 1, progress: bool = False,
              callback: Callable[[int, "Simulator"], None] | None = None) -> "Simulator":
        """Online (``batch_size=1``) or batched training over ``epochs`` passes.

        The samples come in :func:`sample_order`; every epoch ends with
        :func:`check_weights`.

        Parameters
        ----------
        x : numpy.ndarray
            The inputs ``(n, n_in)``.
        y : numpy.ndarray, optional
            The targets ``(n, n_out)``; None only for a circuit without targets
            (:func:`training_arrays`).
        epochs : int, default 1
            The number of passes (an integer ``>= 0``).
        seed : int, default 0
            The seed of the sample order.
        batch_size : int, default 1
            Samples per window (an integer ``>= 1``).
        progress : bool, default False
            Show a progress bar (tqdm).
        callback : callable, optional
            ``callback(epoch, sim)``, called after each epoch.

        Returns
        -------
        Simulator
            ``self``, trained.

        Raises
        ------
        NonFiniteError
            For NaN/inf in ``x`` or ``y``, and when a weight matrix is non-finite at
            the end of an epoch (naming it).
        ValueError
            For ``epochs`` or ``batch_size`` that are not integers in range, for
            ``x`` and ``y`` of different lengths, and for ``y=None`` with a circuit
            that reads targets.
        """
        x, y = self._training_inputs(*training_arrays(x, y, self.circuit))
        _check_schedule(epochs, batch_size)
        n = len(x)
        bar = _progress(epochs * n, progress, f"train {self.circuit.name} [{self.backend}]")
        orders = sample_order(n, epochs, seed).reshape(epochs, n) if epochs else []
        for epoch, order in enumerate(orders):
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                self.present(x[idx], y[idx], train=True)
                bar.update(len(idx))
            check_weights(self, epoch, epochs)
            if callback is not None:
                callback(epoch, self)
        bar.close()
        return self

    def _training_inputs(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``x`` and ``y`` (checked float64) as :meth:`train` hands them to
        :meth:`present`; a backend that computes in another precision converts
        them here, once."""
        return x, y

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Predicted classes: argmax of the readout at the end of each window.

        Parameters
        ----------
        x : numpy.ndarray
            The inputs ``(n, n_in)``.
        batch_size : int, default 256
            Samples per window.

        Returns
        -------
        numpy.ndarray
            The predicted class of each sample, shape ``(n,)``.

        Raises
        ------
        NonFiniteError
            For NaN/inf in ``x``, and for a non-finite readout (:func:`check_readout`).
        """
        x = inference_array(x)
        out = [check_readout(self, self.present(x[s:s + batch_size], None, train=False), s)
               .argmax(axis=1) for s in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros(0, dtype=int)

    def evaluate(self, x: np.ndarray, labels: np.ndarray) -> float:
        """Accuracy in [0, 1].

        Parameters
        ----------
        x : numpy.ndarray
            The inputs ``(n, n_in)``.
        labels : numpy.ndarray
            The classes ``(n,)``.

        Returns
        -------
        float
            The fraction of samples whose predicted class (:meth:`predict`) is the
            label.

        Raises
        ------
        NonFiniteError
            For NaN/inf in ``x`` or ``labels``, and for a non-finite readout.
        """
        labels = np.asarray(labels)
        require_finite(labels, "labels")
        return float(np.mean(self.predict(x) == labels))

    def artifact(self, **metadata) -> Artifact:
        """The trained network as an :class:`~neuro_pc.ir.Artifact`.

        It holds the circuit, the weights of the stored projections (copies), the
        masks, and metadata: the backend, the seed, what the backend adds (a network
        trained on the learning engine records its number formats, ``"onchip"``),
        then ``metadata``.

        Parameters
        ----------
        **metadata
            Further metadata entries (they override the ones above).

        Returns
        -------
        Artifact
            The artifact.
        """
        meta = {"backend": self.backend, "seed": self.seed, **self._metadata(), **metadata}
        stored = {p.name for p in self.circuit.stored}
        return Artifact(circuit=self.circuit,
                        weights={k: np.array(v) for k, v in self.weights.items() if k in stored},
                        masks=dict(self.masks), metadata=meta)

    def _metadata(self) -> dict:
        """What a backend adds to its artifacts' metadata: a network trained on the
        learning engine records its number formats (``"onchip"``)."""
        plan = getattr(self, "plan", None)
        if plan is None:
            return {}
        from hardware_targets.onchip import plan_metadata

        return {"onchip": plan_metadata(plan)}

    def save(self, path, **metadata):
        """Write :meth:`artifact` to ``path`` (:func:`~neuro_pc.ir.save_artifact`).

        Parameters
        ----------
        path : str or os.PathLike
            The ``.npz`` file to write (atomically).
        **metadata
            Further metadata entries of the artifact.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        return save_artifact(path, self.artifact(**metadata))

    #: how plastic projections learn unless told, and the default arithmetic tag
    default_learning = "rule"
    default_tag: str | None = None

    @classmethod
    def from_artifact(cls, artifact: Artifact, **kwargs) -> "Simulator":
        """The artifact's circuit and weights on this backend.

        A network trained on the learning engine is compiled again with the number
        formats its artifact records (when the tag is the same), so that its weights
        are the same register values.

        Parameters
        ----------
        artifact : Artifact
            The artifact (its circuit, weights, masks, and the seed of its metadata).
        **kwargs
            Keyword options of the simulator class.

        Returns
        -------
        Simulator
            The compiled simulator.
        """
        if kwargs.get("learning", cls.default_learning) == "engine" and kwargs.get("plan") is None:
            from hardware_targets.onchip import plan_options_from

            opts = plan_options_from(artifact.metadata, kwargs.get("tag", cls.default_tag))
            if opts is not None:
                kwargs["plan_options"] = {**opts, **(kwargs.get("plan_options") or {})}
        return cls(artifact.circuit, artifact.weights, masks=artifact.masks or None,
                   seed=artifact.metadata.get("seed", 0), **kwargs)


def training_arrays(x, y, circuit=None) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` as float64 arrays of the same length, every entry finite.

    ``y=None`` trains a circuit without targets (no stream ``"y"``, e.g. MPC): it
    becomes ``(n, 0)``; for a circuit that reads targets it is an error.

    Parameters
    ----------
    x : array_like
        The training inputs.
    y : array_like or None
        The training targets.
    circuit : Circuit, optional
        The circuit trained (to tell whether ``y=None`` is allowed).

    Returns
    -------
    x : numpy.ndarray
        The inputs, float64.
    y : numpy.ndarray
        The targets, float64 (``(n, 0)`` for ``y=None``).

    Raises
    ------
    NonFiniteError
        Naming the array and the first bad index.
    ValueError
        For ``x`` and ``y`` of different lengths, and for ``y=None`` with a
        circuit that reads targets.
    """
    x = np.asarray(x, dtype=np.float64)
    if y is None:
        if circuit is not None and "y" in circuit.streams:
            raise ValueError(f"circuit {circuit.name!r} learns from targets (stream 'y' of "
                             f"width {circuit.streams['y']}): pass y to train()")
        y = np.zeros((len(x), 0))
    y = np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
    require_finite(x, "x (training inputs)")
    require_finite(y, "y (training targets)")
    return x, y


def inference_array(x) -> np.ndarray:
    """``x`` as a 2-D float64 array with finite entries (inputs to predict/evaluate).

    Parameters
    ----------
    x : array_like
        The inputs (a 1-D sample is one row).

    Returns
    -------
    numpy.ndarray
        ``x``, 2-D, float64.

    Raises
    ------
    NonFiniteError
        For NaN/inf in ``x``.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    require_finite(x, "x (inputs)")
    return x


def _check_schedule(epochs, batch_size) -> None:
    for name, v, least in (("epochs", epochs, 0), ("batch_size", batch_size, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {v!r}")


def check_weights(sim: "Simulator", epoch: int, epochs: int, how: str = "") -> None:
    """Raise :class:`NonFiniteError` if a weight matrix of ``sim`` holds NaN or inf.

    The message names the projection, the epoch (1-based) and the likely cause.
    Cheap: one ``isfinite`` per matrix.

    Parameters
    ----------
    sim : Simulator
        The simulator whose weights are checked.
    epoch : int
        The epoch just run, 0-based.
    epochs : int
        The number of epochs of the run.
    how : str, default ""
        A note on how the epochs ran (e.g. all in one simulator run).

    Raises
    ------
    NonFiniteError
        For a non-finite weight matrix.
    """
    _raise_if_nonfinite_weights(sim, f"after epoch {epoch + 1}/{epochs}{how}", epoch + 1)


def _raise_if_nonfinite_weights(sim: "Simulator", when: str, epoch: int | None) -> None:
    for proj in sim.circuit.projections:
        w = sim.weights.get(proj.name)
        found = None if w is None else first_nonfinite(w)
        if found is None:
            continue
        index, value, count = found
        if proj.rule is not None and "eta" in proj.rule.params:
            cause = (f"learning rate too large? eta={proj.rule.params['eta']:g} (the rule of "
                     f"{proj.name!r}); lower it, or check the data's scale")
        elif proj.rule is not None:
            cause = f"the rule of {proj.name!r} ({proj.rule.text}) diverged; lower its rates"
        else:
            cause = (f"{proj.name!r} has no rule, so its weights were non-finite from the "
                     "start or a state variable overflowed")
        raise NonFiniteError(
            f"training diverged: the weights of projection {proj.name!r} hold "
            f"{describe_nonfinite(value)} at {index} ({count} non-finite) {when}, circuit "
            f"{sim.circuit.name!r} on the {sim.backend} backend; {cause}",
            array=proj.name, index=index, projection=proj.name, epoch=epoch)


def check_readout(sim: "Simulator", out: np.ndarray, offset: int = 0) -> np.ndarray:
    """``out`` (readouts of samples ``offset…``) unchanged if finite.

    Parameters
    ----------
    sim : Simulator
        The simulator that computed ``out``.
    out : numpy.ndarray
        The readouts ``(B, n_readout)``.
    offset : int, default 0
        The index of ``out``'s first sample (for the message).

    Returns
    -------
    numpy.ndarray
        ``out``.

    Raises
    ------
    NonFiniteError
        For a non-finite readout, naming a non-finite projection if there is one.
    """
    found = first_nonfinite(out)
    if found is None:
        return out
    _raise_if_nonfinite_weights(sim, "at prediction", None)
    index, value, count = found
    raise NonFiniteError(
        f"the readout of circuit {sim.circuit.name!r} ({sim.backend}) is "
        f"{describe_nonfinite(value)} for sample {offset + index[0]} (unit {index[-1]}) "
        "although every weight is finite: a state variable overflowed; check the input "
        "scale and the circuit's parameters", array="readout", index=index)


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool, desc: str):
    """A progress bar over ``total`` training samples (rates in samples/s)."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sample", unit_scale=True, leave=False,
                mininterval=0.5)
