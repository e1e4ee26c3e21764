"""Non-finite numbers (NaN, inf) are errors, never silent results.

:class:`NonFiniteError` is raised when data given to a loader or a simulator
holds NaN or inf, and when training drives a weight matrix non-finite (the
backends check the weights at the end of every epoch:
:func:`neuro_pc.backends.base.check_weights`). This module imports nothing of
the project, so that any layer (data, backends, experiments) may use it.
"""
from __future__ import annotations

import numpy as np


class NonFiniteError(ValueError):
    """A NaN or inf where a finite number is needed.

    Parameters
    ----------
    message : str
        The message.
    array, index, projection, epoch
        Keyword-only; stored as the attributes below.

    Attributes
    ----------
    array : str or None
        The name of the array.
    index : tuple or None
        The first bad index.
    projection : str or None
        The projection, for weights that became non-finite in training.
    epoch : int or None
        The epoch (1-based), for weights that became non-finite in training.
    """

    def __init__(self, message: str, *, array: str | None = None, index: tuple | None = None,
                 projection: str | None = None, epoch: int | None = None):
        super().__init__(message)
        self.array, self.index, self.projection, self.epoch = array, index, projection, epoch

    def __reduce__(self):  # keep the attributes through pickling (process pools)
        return (_rebuild, (self.args[0], self.array, self.index, self.projection, self.epoch))


def _rebuild(message, array, index, projection, epoch):
    return NonFiniteError(message, array=array, index=index, projection=projection, epoch=epoch)


def first_nonfinite(a) -> tuple[tuple, float, int] | None:
    """``(index, value, count)`` of the first non-finite entry of ``a`` (C order)
    and how many there are; None when every entry is finite (or ``a`` is not a
    floating-point array, which cannot hold NaN or inf)."""
    a = np.asarray(a)
    if a.dtype.kind != "f":
        return None
    bad = ~np.isfinite(a)
    if not bad.any():
        return None
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return index, a[index], int(bad.sum())


def describe_nonfinite(value) -> str:
    return "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")


def require_finite(a, name: str, hint: str = "clean the data (drop or impute NaN/inf) "
                                               "before using it") -> None:
    """Raise :class:`NonFiniteError` naming ``name`` and the first bad index
    unless every entry of ``a`` is finite."""
    found = first_nonfinite(a)
    if found is None:
        return
    index, value, count = found
    where = index[0] if len(index) == 1 else index
    raise NonFiniteError(f"{name} holds {describe_nonfinite(value)} at index {where} "
                         f"(first of {count} non-finite value{'s' * (count > 1)}); {hint}",
                         array=name, index=index)
