"""Linear probe and decoder: how much of the label and of the image a frozen
representation keeps.

The MPC paper's evaluation (Ororbia et al., arXiv 2503.21796, Sec. 4): freeze
the encoder, extract latents (concatenated over the K-glimpse trajectory),
fit a log-linear classifier, report test accuracy. Here: scikit-learn's
multinomial :class:`~sklearn.linear_model.LogisticRegression` on standardised
features (the scaler is fitted on the probe's training samples only).
"""
from __future__ import annotations

import numpy as np

__all__ = ["label_subset", "linear_probe", "decoder_mse"]


def label_subset(y: np.ndarray, n_labels: int | None, seed: int = 0) -> np.ndarray:
    """Indices of ``n_labels`` training samples, stratified by class (as equal
    per class as possible, every class at least once if ``n_labels`` allows),
    drawn with ``default_rng(seed)``; all indices when ``n_labels`` is None or
    ``>= len(y)``."""
    y = np.asarray(y)
    n = len(y)
    if n_labels is None or n_labels >= n:
        return np.arange(n)
    n_labels = int(n_labels)
    if n_labels < 1:
        raise ValueError(f"n_labels must be >= 1, got {n_labels}")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per_class = {c: rng.permutation(np.flatnonzero(y == c)) for c in classes}
    base, extra = divmod(n_labels, len(classes))
    chosen = []
    bonus = set(rng.permutation(classes)[:extra].tolist())
    leftover = []
    for c in classes:
        want = base + (1 if c in bonus else 0)
        chosen += per_class[c][:want].tolist()
        leftover += per_class[c][want:].tolist()
    if len(chosen) < n_labels:  # some class too small: fill from the rest
        chosen += rng.permutation(leftover)[:n_labels - len(chosen)].tolist()
    return np.sort(np.array(chosen, dtype=int))


def linear_probe(train_feats: np.ndarray, train_y: np.ndarray, test_feats: np.ndarray,
                 test_y: np.ndarray, n_labels: int | None = None, seed: int = 0,
                 C: float = 1.0, max_iter: int = 2000) -> float:
    """Test accuracy in ``[0, 1]`` of a logistic-regression probe.

    train_feats ``(n_train, d)``, test_feats ``(n_test, d)``: frozen features;
    train_y, test_y: integer labels. n_labels: fit on a stratified subset of
    that many training samples (:func:`label_subset` with ``seed``); None: all.
    C: inverse L2 strength of scikit-learn's LogisticRegression (lbfgs).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_feats = np.asarray(train_feats, dtype=np.float64).reshape(len(train_y), -1)
    test_feats = np.asarray(test_feats, dtype=np.float64).reshape(len(test_y), -1)
    idx = label_subset(train_y, n_labels, seed)
    xs, ys = train_feats[idx], np.asarray(train_y)[idx]
    scaler = StandardScaler().fit(xs)
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    clf.fit(scaler.transform(xs), ys)
    return float(np.mean(clf.predict(scaler.transform(test_feats)) == np.asarray(test_y)))


def decoder_mse(train_feats: np.ndarray, train_images: np.ndarray, test_feats: np.ndarray,
                test_images: np.ndarray, hidden: int = 1024, alpha: float = 1e-3,
                epochs: int = 50, seed: int = 0) -> float:
    """The MPC paper's Dec-MSE (Sec. 4): a decoder MLP with one hidden layer of
    ``hidden`` ReLU units and Tikhonov (L2) regularisation ``alpha`` is fitted to
    reconstruct the images from the frozen features (divided by one scale, the
    training features' overall standard deviation: per-feature standardisation
    would blow rarely active k-WTA units up to ~100 sd on test images and the
    decoder with them; scikit-learn's ``MLPRegressor``, Adam, at most ``epochs``
    passes);
    returned is the test mean over images of the summed squared error
    ``sum_pixels (x - x_hat)^2`` (the paper reports it "in nats"; a decoder that
    always outputs the mean image scores the summed pixel variance).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    train_feats = np.asarray(train_feats, dtype=np.float64).reshape(len(train_images), -1)
    test_feats = np.asarray(test_feats, dtype=np.float64).reshape(len(test_images), -1)
    scale = float(train_feats.std()) or 1.0
    dec = MLPRegressor(hidden_layer_sizes=(int(hidden),), alpha=float(alpha),
                       max_iter=int(epochs), random_state=seed)
    with warnings.catch_warnings():     # a fixed epoch budget, not convergence, is the protocol
        warnings.simplefilter("ignore", ConvergenceWarning)
        dec.fit(train_feats / scale, np.asarray(train_images, dtype=np.float64))
    err = dec.predict(test_feats / scale) - np.asarray(test_images, dtype=np.float64)
    return float(np.mean(np.sum(err ** 2, axis=1)))
