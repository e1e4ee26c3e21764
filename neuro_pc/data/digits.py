"""The scikit-learn 8x8 digits data set (ships with scikit-learn, no download)."""
from __future__ import annotations

import numpy as np
from sklearn import datasets as _skd
from sklearn.model_selection import train_test_split

from neuro_pc.data.dataset import Dataset


def load_digits(test_size: float = 0.25, seed: int = 0, scale: bool = True) -> Dataset:
    """Load the 1797 8x8 handwritten digits with a fixed stratified split.

    The split is ``sklearn.model_selection.train_test_split(x, y,
    test_size=test_size, stratify=y, random_state=seed)``; at the default
    ``test_size=0.25`` that gives **1347 train / 450 test** samples, each class
    represented in the same proportion (within one sample) in both parts. The
    same ``seed`` always gives the same split; different seeds give different
    splits.

    Parameters
    ----------
    test_size : float, default 0.25
        The test part's share (``train_test_split``'s ``test_size``).
    seed : int, default 0
        The split's ``random_state``.
    scale : bool, default True
        Divide the pixel intensities 0..16 by 16 into ``[0, 1]``; false keeps
        the raw 0..16 values.

    Returns
    -------
    Dataset
        ``x_*`` float64 of shape ``(n, 64)``, ``y_*`` int64 of shape ``(n,)`` and
        ``n_classes=10``, named ``"digits"``.
    """
    bunch = _skd.load_digits()
    x = bunch.data.astype(np.float64)
    if scale:
        x = x / 16.0
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, stratify=y,
                                              random_state=seed)
    return Dataset(x_tr, y_tr, x_te, y_te, n_classes=10, name="digits")
