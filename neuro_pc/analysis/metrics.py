"""Pure-NumPy metrics for studying how local a learning rule is and what it learns.

Each entry below names where its metric comes from. Everything here is a
plain function of NumPy arrays: no backend, no circuit, no state. All
computations are done in float64 and scalar results are returned as Python
``float``.

Contents
--------
``angle``, ``norm_ratio``, ``weight_alignment``
    δ-alignment (Lillicrap 2016; Akrout ``evaluate_angles``) and weight
    alignment with the norm ratio (biotorch ``compute_matrix_angle`` /
    ``compute_weight_ratio``; Akrout ``angle_between(w.T, back_w)``).
``singular_values``, ``entropy_effective_rank``, ``participation_ratio``
    Effective rank of error signals / updates (seed b, rank collapse in FA).
``stable_rank``, ``rank_measures``
    The same: the stable rank, and every measure at once.
``pc_energy``
    The predictive-coding energy ``½‖ε_l‖²`` per layer (pcx ``se_energy``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "angle",
    "norm_ratio",
    "weight_alignment",
    "singular_values",
    "entropy_effective_rank",
    "participation_ratio",
    "stable_rank",
    "rank_measures",
    "pc_energy",
]


# ---------------------------------------------------------------------------
# angles and norms
# ---------------------------------------------------------------------------

def _as_float(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _unit(v: np.ndarray) -> np.ndarray | None:
    """``v/‖v‖`` computed without over/underflow; None when ``‖v‖ = 0``."""
    m = np.max(np.abs(v)) if v.size else 0.0
    if not m > 0.0:  # zero vector, empty, or nan max
        if np.isnan(m):
            return np.full_like(v, np.nan)
        return None
    if not np.isfinite(m):
        return np.full_like(v, np.nan)
    w = v / m                      # entries in [-1, 1]: no overflow or underflow
    return w / np.sqrt(np.dot(w, w))


def angle(a, b, degrees: bool = True) -> float:
    """Angle between ``vec(a)`` and ``vec(b)``.

    Formula: ``θ = arccos(⟨vec a, vec b⟩ / (‖a‖_F ‖b‖_F))`` with the cosine
    clipped to ``[-1, 1]``. It is evaluated in the equivalent, numerically
    stable form ``θ = 2·atan2(‖â − b̂‖, ‖â + b̂‖)`` with ``â = vec a/‖a‖``
    (Kahan), which lies in ``[0, π]`` by construction (so the clip is
    implicit) and stays accurate near 0° and 180°, where ``arccos`` loses
    half the digits; ``angle(x, x)`` is exactly 0.

    Parameters
    ----------
    a, b : array_like
        The same shape (any ndim; e.g. δ of shape (batch, n_l), or weight
        matrices). Flattened in C order.
    degrees : bool, default True
        Return degrees (default) or radians.

    Returns
    -------
    float
        In ``[0, 180]`` degrees (``[0, π]`` rad). Invariant to positive
        rescaling of either argument. **nan when either argument has zero
        norm** (the angle is undefined), when either is empty, or when either
        contains nan/inf.

    Raises
    ------
    ValueError
        If the shapes differ (naming both shapes).
    """
    a = _as_float(a)
    b = _as_float(b)
    if a.shape != b.shape:
        raise ValueError(f"angle: shapes differ: a has shape {a.shape}, b has shape {b.shape}")
    ua = _unit(a.ravel())
    ub = _unit(b.ravel())
    if ua is None or ub is None:
        return float("nan")
    if not (np.all(np.isfinite(ua)) and np.all(np.isfinite(ub))):
        return float("nan")
    theta = 2.0 * np.arctan2(np.linalg.norm(ua - ub), np.linalg.norm(ua + ub))
    theta = float(np.clip(theta, 0.0, np.pi))
    return float(np.degrees(theta)) if degrees else theta


def _fro(x: np.ndarray) -> float:
    """Frobenius norm, robust to overflow/underflow (scaled by max |x|)."""
    if x.size == 0:
        return 0.0
    m = float(np.max(np.abs(x)))
    if m == 0.0 or not np.isfinite(m):
        return m if not np.isnan(m) else float("nan")
    w = (x / m).ravel()
    return m * float(np.sqrt(np.dot(w, w)))


def norm_ratio(a, b) -> float:
    """Ratio of Frobenius norms ``‖a‖_F / ‖b‖_F`` (dimensionless).

    When ``‖b‖ = 0`` the result is ``inf`` if ``‖a‖ > 0`` and ``nan`` if both
    are zero; no warning is emitted.

    Parameters
    ----------
    a, b : array_like
        Any shapes (each is treated as ``vec``).

    Returns
    -------
    float
        ``‖a‖_F / ‖b‖_F``.
    """
    na = _fro(_as_float(a))
    nb = _fro(_as_float(b))
    if nb == 0.0:
        return float("nan") if (na == 0.0 or np.isnan(na)) else float("inf")
    return na / nb


def weight_alignment(W, B) -> dict:
    """Alignment of a feedback matrix ``B`` with the transport it replaces, ``Wᵀ``.

    For feedback alignment the hidden error is ``δ_l = (B_{l+1} δ_{l+1}) ⊙ f′``
    where BP would use ``W_{l+1}ᵀ``.

    Parameters
    ----------
    W : array_like
        The forward matrix, shape ``(n_out, n_in)`` (``a = W h``).
    B : array_like
        The feedback matrix, shape ``(n_in, n_out)``. For product FA pass the
        effective feedback ``B·R``.

    Returns
    -------
    dict
        ``"angle_deg"``: ``angle(Wᵀ, B)`` in degrees, in ``[0, 180]``; nan when
        either matrix is zero (see :func:`angle`). Below 90° means ``Be`` lies
        within 90° of ``Wᵀe`` on average (the FA convergence condition).
        ``"norm_ratio"``: ``‖B‖_F / ‖W‖_F`` (biotorch ``compute_weight_ratio``).

    Raises
    ------
    ValueError
        If either is not 2-D or ``B.shape != W.T.shape`` (the message names both
        shapes).
    """
    W = _as_float(W)
    B = _as_float(B)
    if W.ndim != 2 or B.ndim != 2 or B.shape != W.T.shape:
        raise ValueError(
            "weight_alignment: expected W of shape (n_out, n_in) and B of shape (n_in, n_out); "
            f"got W.shape={W.shape}, B.shape={B.shape}")
    return {"angle_deg": angle(W.T, B, degrees=True), "norm_ratio": norm_ratio(B, W)}


# ---------------------------------------------------------------------------
# rank measures
# ---------------------------------------------------------------------------

def singular_values(M) -> np.ndarray:
    """Singular values of a 2-D matrix, in descending order, float64.

    If ``M`` contains nan/inf the result is all-nan (so the rank measures below
    return nan rather than raising inside a training loop).

    Parameters
    ----------
    M : array_like
        Shape ``(m, n)`` (e.g. an error signal Δ_l of shape ``(batch, n_l)`` or
        an update of shape ``(n_out, n_in)``).

    Returns
    -------
    numpy.ndarray
        Shape ``(min(m, n),)``, in the units of ``M``.

    Raises
    ------
    ValueError
        If ``M`` is not 2-D.
    """
    M = _as_float(M)
    if M.ndim != 2:
        raise ValueError(f"singular_values: expected a 2-D matrix, got shape {M.shape}")
    k = min(M.shape)
    if k == 0:
        return np.zeros(0)
    if not np.all(np.isfinite(M)):
        return np.full(k, np.nan)
    return np.linalg.svd(M, compute_uv=False)


def _normalised_spectrum(M, s=None) -> np.ndarray | None:
    """``s / s_max``; None for the zero (or empty) matrix; all-nan if non-finite.
    ``s``: ``M``'s singular values when already computed."""
    s = singular_values(M) if s is None else s
    if s.size == 0:
        return None
    if np.isnan(s[0]):
        return s
    if s[0] <= 0.0:
        return None
    return s / s[0]


def entropy_effective_rank(M, eps: float = 1e-12, *, _s=None) -> float:
    """Entropy effective rank (Roy & Vetterli 2007, EUSIPCO).

    With singular values ``s_i`` of ``M``:
    ``p_i = s_i / Σ_j s_j``, ``erank = exp(−Σ_i p_i log p_i)`` (0·log 0 := 0).
    Dimensionless, in ``[1, rank M]``; equals ``k`` for ``k`` equal non-zero
    singular values. Invariant to scaling and to orthogonal transforms on
    either side.

    Parameters
    ----------
    M : array_like
        Shape ``(m, n)``.
    eps : float, default 1e-12
        A *relative* cut-off: singular values below ``eps · s_max`` are
        treated as exactly zero (round-off), so e.g. a numerically rank-1 matrix
        gives exactly 1.0. This keeps the measure scale invariant.
    _s : numpy.ndarray, optional
        Internal: ``M``'s singular values when already computed
        (:func:`rank_measures` computes them once for all three measures).

    Returns
    -------
    float
        The entropy effective rank; 0.0 for the zero matrix (and for an empty
        one); nan if ``M`` contains nan/inf.
    """
    s = _normalised_spectrum(M, _s)
    if s is None:
        return 0.0
    if np.isnan(s[0]):
        return float("nan")
    s = s[s > eps]
    p = s / s.sum()
    return float(np.exp(-np.sum(p * np.log(p))))


def participation_ratio(M, *, _s=None) -> float:
    """Participation ratio of the spectrum of ``M``.

    ``PR = (Σ_i s_i²)² / Σ_i s_i⁴``, i.e. ``(Σ λ_i)² / Σ λ_i²`` for the
    eigenvalues ``λ_i = s_i²`` of ``MᵀM`` (the covariance spectrum when rows
    are samples). Dimensionless, ``stable_rank ≤ PR ≤ rank M``; equals ``k``
    for ``k`` equal non-zero singular values.

    Parameters
    ----------
    M : array_like
        Shape ``(m, n)``.
    _s : numpy.ndarray, optional
        Internal: ``M``'s singular values when already computed
        (:func:`rank_measures` computes them once for all three measures).

    Returns
    -------
    float
        The participation ratio; 0.0 for the zero (or empty) matrix; nan if
        ``M`` contains nan/inf.
    """
    s = _normalised_spectrum(M, _s)
    if s is None:
        return 0.0
    if np.isnan(s[0]):
        return float("nan")
    lam = s * s
    return float(lam.sum() ** 2 / np.sum(lam * lam))


def stable_rank(M, *, _s=None) -> float:
    """Stable (numerical) rank ``‖M‖_F² / ‖M‖_2² = Σ_i s_i² / s_max²``.

    Dimensionless, in ``[1, rank M]``.

    Parameters
    ----------
    M : array_like
        Shape ``(m, n)``.
    _s : numpy.ndarray, optional
        Internal: ``M``'s singular values when already computed
        (:func:`rank_measures` computes them once for all three measures).

    Returns
    -------
    float
        The stable rank; 0.0 for the zero (or empty) matrix; nan if ``M``
        contains nan/inf.
    """
    s = _normalised_spectrum(M, _s)
    if s is None:
        return 0.0
    if np.isnan(s[0]):
        return float("nan")
    return float(np.sum(s * s))


def rank_measures(M) -> dict:
    """All three effective-rank measures of ``M``, from one SVD.

    Parameters
    ----------
    M : array_like
        Shape ``(m, n)``.

    Returns
    -------
    dict
        ``{"erank": entropy_effective_rank(M),
        "participation_ratio": participation_ratio(M),
        "stable_rank": stable_rank(M)}`` (all 0.0 for the zero matrix).
    """
    s = singular_values(M)
    return {
        "erank": entropy_effective_rank(M, _s=s),
        "participation_ratio": participation_ratio(M, _s=s),
        "stable_rank": stable_rank(M, _s=s),
    }


# ---------------------------------------------------------------------------
# predictive-coding energy
# ---------------------------------------------------------------------------

def pc_energy(errors: Sequence) -> tuple[np.ndarray, float]:
    """Per-layer and total predictive-coding energy.

    For error units ``ε_l`` of shape ``(batch, n_l)``:
    ``E_l = mean_over_batch( ½ Σ_i ε_{l,i}² )`` and ``E = Σ_l E_l``
    (pcx ``se_energy = ½(h − u)²`` summed per vode). Units: squared units of
    the error variables, per sample.

    Parameters
    ----------
    errors : sequence of array_like
        One error array per layer. A 1-D array of shape ``(n_l,)`` is treated
        as a single sample; arrays with more than 2 dimensions are summed over
        every non-batch axis. All layers must share the batch size.

    Returns
    -------
    per_layer : numpy.ndarray
        float64, shape ``(L,)`` (nan for a layer with an empty batch).
    total : float
        ``Σ_l E_l`` (0.0 for an empty list).

    Raises
    ------
    ValueError
        If batch sizes differ between layers (naming them), or a layer's error
        is a scalar.
    """
    per_layer = []
    batch = None
    for i, e in enumerate(errors):
        e = _as_float(e)
        if e.ndim == 0:
            raise ValueError(f"pc_energy: layer {i} error is a scalar; expected (batch, n_l)")
        if e.ndim == 1:
            e = e[None, :]
        if batch is None:
            batch = e.shape[0]
        elif e.shape[0] != batch:
            raise ValueError(
                f"pc_energy: batch sizes differ: layer 0 has {batch}, layer {i} has {e.shape[0]} "
                f"(shape {e.shape})")
        if e.shape[0] == 0:
            per_layer.append(float("nan"))
            continue
        sq = 0.5 * np.sum(e.reshape(e.shape[0], -1) ** 2, axis=1)
        per_layer.append(float(np.mean(sq)))
    arr = np.asarray(per_layer, dtype=np.float64)
    return arr, float(arr.sum())
