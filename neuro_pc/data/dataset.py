"""The :class:`Dataset` container shared by every loader."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuro_pc.numerics import require_finite


@dataclass(frozen=True, eq=False)
class Dataset:
    """A fixed train/test split of a classification data set.

    The arrays are coerced (float64 / int64) and checked on construction (NaN
    or inf anywhere is a :class:`~neuro_pc.numerics.NonFiniteError` naming the
    array and the first bad index). The
    dataclass is frozen, but the arrays themselves are ordinary NumPy arrays:
    copy before modifying them in place.

    Attributes
    ----------
    x_train, x_test : numpy.ndarray
        float64 arrays, shape ``(n_train, n_features)`` and
        ``(n_test, n_features)``.
    y_train, y_test : numpy.ndarray
        int64 arrays, shape ``(n_train,)`` and ``(n_test,)``, labels in
        ``[0, n_classes)``.
    n_classes : int
        Number of classes.
    name : str
        Short identifier, e.g. ``"digits"``.

    Raises
    ------
    NonFiniteError
        For NaN or inf in an array.
    ValueError
        For ``x`` arrays that are not 2-D, labels that are not 1-D integers in
        ``[0, n_classes)`` as many as the samples, and train and test parts with
        different numbers of features.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x = np.asarray(getattr(self, f"x_{part}"), dtype=np.float64)
            y = np.asarray(getattr(self, f"y_{part}"))
            require_finite(x, f"{self.name}: x_{part}")
            require_finite(y, f"{self.name}: y_{part}")
            _check_split(part, x, y, self.n_classes)
            object.__setattr__(self, f"x_{part}", x)
            object.__setattr__(self, f"y_{part}", y.astype(np.int64, copy=False))
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ValueError(f"{self.name}: x_train has {self.x_train.shape[1]} features but "
                             f"x_test has {self.x_test.shape[1]}")

    @property
    def n_features(self) -> int:
        """Number of input features (columns of ``x_train``)."""
        return int(self.x_train.shape[1])

    def one_hot(self, y: np.ndarray) -> np.ndarray:
        """One-hot encode labels.

        Parameters
        ----------
        y : numpy.ndarray
            Integer array, shape ``(n,)``, values in ``[0, n_classes)``.

        Returns
        -------
        numpy.ndarray
            A float64 array of shape ``(n, n_classes)``.

        Raises
        ------
        ValueError
            For labels that are not a 1-D integer array, or out of range.
        """
        y = np.asarray(y)
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"one_hot expects a 1-D integer label array, got shape "
                             f"{y.shape} dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= self.n_classes):
            raise ValueError(f"labels must lie in [0, {self.n_classes}), got range "
                             f"[{y.min()}, {y.max()}]")
        out = np.zeros((y.shape[0], self.n_classes), dtype=np.float64)
        out[np.arange(y.shape[0]), y] = 1.0
        return out

    def hold_out(self, n: int, seed: int = 0) -> "Dataset":
        """A validation split: ``n`` training samples become the evaluation part.

        The held-out samples are the first ``n`` of a permutation drawn with
        ``default_rng(seed)`` (so they are spread over the training set, not a
        contiguous block); the rest stay the training part, in their order. The
        test part is not used.

        Parameters
        ----------
        n : int
            How many training samples to hold out, ``0 < n < n_train``.
        seed : int, default 0
            Seed of the permutation.

        Returns
        -------
        Dataset
            Named ``<name>-validation``, with the held-out samples as its test
            part.

        Raises
        ------
        ValueError
            For ``n`` outside ``(0, n_train)``.
        """
        n_train = len(self.y_train)
        if not 0 < n < n_train:
            raise ValueError(f"{n} samples would leave none of the {n_train} training samples "
                             "to train on" if n >= n_train else
                             f"must hold out at least one sample, got {n}")
        perm = np.random.default_rng(seed).permutation(n_train)
        val, rest = np.sort(perm[:n]), np.sort(perm[n:])
        return Dataset(self.x_train[rest], self.y_train[rest], self.x_train[val],
                       self.y_train[val], n_classes=self.n_classes,
                       name=f"{self.name}-validation")

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, n_train={len(self.y_train)}, "
                f"n_test={len(self.y_test)}, n_features={self.n_features}, "
                f"n_classes={self.n_classes})")


def _check_split(part: str, x: np.ndarray, y: np.ndarray, n_classes: int) -> None:
    """Raise ValueError unless ``x`` is 2-D, ``y`` 1-D integer labels of the same length."""
    if x.ndim != 2:
        raise ValueError(f"x_{part} must be 2-D (n, n_features), got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y_{part} must be 1-D with {len(x)} labels, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_{part} must hold integer labels, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"y_{part} labels must lie in [0, {n_classes}), got range "
                         f"[{y.min()}, {y.max()}]")
