"""Muon-style orthogonalisation of weight updates, in NumPy.

Muon ("MomentUm Orthogonalized by Newton–Schulz", Keller Jordan, 2024,
https://kellerjordan.github.io/posts/muon/ and github.com/KellerJordan/Muon)
replaces an update ``G = U S Vᵀ`` by approximately ``U Vᵀ``: every non-zero
singular value is pushed towards 1. It is a *population-level* transform in
the locality taxonomy (it mixes the whole update matrix), and it raises the
rank of low-rank updates only through momentum: a single rank-1 update
``u vᵀ`` maps to a multiple of ``u vᵀ / (‖u‖‖v‖)``.

Differences from the reference PyTorch code: we iterate in float32/float64
(the input's float precision, at least float32) rather than bfloat16, and
one ``Muon`` object holds the state of a single layer's update.
"""
from __future__ import annotations

import numpy as np

__all__ = ["NS_COEFFS", "newton_schulz", "orthogonalize_exact", "Muon"]

#: Quintic Newton–Schulz coefficients of Keller Jordan's Muon
#: (``zeropower_via_newtonschulz5``): ``p(x) = a x + b x³ + c x⁵``.
NS_COEFFS = (3.4445, -4.7750, 2.0315)


def _float_array(G) -> np.ndarray:
    G = np.asarray(G)
    dtype = np.result_type(G.dtype, np.float32)  # float16/int -> float32/float64
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"expected a real matrix, got dtype {G.dtype}")
    return G.astype(dtype, copy=True)


def newton_schulz(G, steps: int = 5, eps: float = 1e-7) -> np.ndarray:
    """Approximate orthogonalisation ``G = U S Vᵀ ↦ U p^k(S/‖G‖_F) Vᵀ ≈ U Vᵀ``.

    This is the quintic Newton–Schulz iteration of Keller Jordan's Muon
    (``zeropower_via_newtonschulz5``; coefficients ``a, b, c = 3.4445,
    −4.7750, 2.0315``, chosen to maximise the slope at 0 rather than to
    converge):

    1. ``X = G / (‖G‖_F + eps)`` (so every singular value is in ``[0, 1]``);
       if ``G`` has more rows than columns, work on ``Xᵀ`` (smaller Gram).
    2. repeat ``steps`` times: ``A = X Xᵀ``, ``B = b A + c A²``,
       ``X ← a X + B X``; this applies ``p(σ) = aσ + bσ³ + cσ⁵`` to each
       singular value and leaves the singular vectors unchanged.
    3. transpose back if needed.

    With the default 5 steps, every singular value with ``σ/‖G‖_F ≥ 0.01``
    ends in ``[0.6818, 1.1344]`` (an interval that ``p`` maps into itself);
    smaller ones are amplified by at most ``a⁵ ≈ 486``; zero stays zero. So
    the result is ``U S′ Vᵀ`` with ``S′`` roughly uniform around 1, not an
    exact polar factor (see :func:`orthogonalize_exact`).

    Parameters
    ----------
    G : array_like
        Shape ``(m, n)``.
    steps : int, default 5
        Number of iterations (``0`` returns the normalised ``G``).
    eps : float, default 1e-7
        Added to the Frobenius norm (the zero matrix maps to zero).

    Returns
    -------
    numpy.ndarray
        Shape ``(m, n)``, float32 or float64 (dimensionless: the scale
        of ``G`` is removed). Odd and positively homogeneous of degree 0:
        ``NS(cG) = sign(c)·NS(G)`` (up to ``eps``).

    Raises
    ------
    ValueError
        If ``G`` is not 2-D or ``steps`` is not a non-negative integer.
    TypeError
        If ``G`` is not a real matrix.
    """
    X = _float_array(G)
    if X.ndim != 2:
        raise ValueError(f"newton_schulz: expected a 2-D matrix, got shape {X.shape}")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"newton_schulz: steps must be a non-negative integer, got {steps!r}")
    a, b, c = NS_COEFFS
    transposed = X.shape[0] > X.shape[1]
    if transposed:
        X = X.T
    X = X / (np.linalg.norm(X) + eps)
    for _ in range(int(steps)):
        A = X @ X.T
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    if transposed:
        X = X.T
    return np.ascontiguousarray(X)


def orthogonalize_exact(G, rtol: float | None = None) -> np.ndarray:
    """Exact orthogonal polar factor ``U Vᵀ`` of ``G = U S Vᵀ`` via the SVD.

    All non-zero singular values of the result are exactly 1. Singular
    directions with ``s_i ≤ rtol · s_max`` are dropped, i.e. mapped to 0 as
    Newton–Schulz does, instead of getting an arbitrary orthonormal
    completion. The zero matrix maps to zero. Used as the reference for
    :func:`newton_schulz` in tests.

    Parameters
    ----------
    G : array_like
        Shape ``(m, n)``.
    rtol : float, optional
        The relative cut-off (default ``max(m, n) · machine eps``, as
        ``numpy.linalg.matrix_rank``).

    Returns
    -------
    numpy.ndarray
        Shape ``(m, n)``, float64.

    Raises
    ------
    ValueError
        If ``G`` is not 2-D.
    """
    G = np.asarray(G, dtype=np.float64)
    if G.ndim != 2:
        raise ValueError(f"orthogonalize_exact: expected a 2-D matrix, got shape {G.shape}")
    if min(G.shape) == 0:
        return np.zeros(G.shape)
    U, s, Vt = np.linalg.svd(G, full_matrices=False)
    if rtol is None:
        rtol = max(G.shape) * np.finfo(np.float64).eps
    keep = s > rtol * s[0] if s[0] > 0 else np.zeros_like(s, dtype=bool)
    return (U[:, keep] @ Vt[keep, :])


class Muon:
    """Muon for one layer: momentum, then Newton–Schulz orthogonalisation.

    ``step(G)`` follows Keller Jordan's ``muon_update``:

    * ``buf ← β·buf + (1−β)·G`` (``buf.lerp_(G, 1−β)``, buffer starts at 0);
    * ``U = (1−β)·G + β·buf`` if ``nesterov`` else ``U = buf``;
    * ``O = newton_schulz(U, steps)``;
    * ``O ← O · max(1, rows/cols)^½`` for ``scale="shape"``.

    With ``beta=0`` there is no memory: ``U = G`` and the output depends only
    on the current update. For a rank-1 ``G = u vᵀ`` (a batch-1 Hebbian /
    δ·preᵀ update) the output is then ``κ · u vᵀ/(‖u‖‖v‖)`` with
    ``κ = p⁵(1)·scale``: Muon alone cannot raise the rank of a batch-1
    update. Momentum (β > 0) sums updates from different samples and does.

    The update's sign convention is preserved (the map is odd), so pass either
    a gradient or a ΔW and use the result the same way.

    Parameters
    ----------
    beta : float, default 0.95
        Momentum coefficient in ``[0, 1)``.
    nesterov : bool, default True
        Use the Nesterov-style blend above.
    steps : int, default 5
        Newton–Schulz iterations.
    scale : str, float or None, default "shape"
        ``"shape"`` (``max(1, rows/cols)^½``, as in Muon), ``None`` or
        ``"none"`` (1), or a positive number (constant factor).
    eps : float, default 1e-7
        Passed to :func:`newton_schulz`.

    Attributes
    ----------
    buffer : numpy.ndarray or None
        The momentum buffer (None before the first step).
    last_pre_orth : numpy.ndarray or None
        The matrix ``U`` fed to Newton–Schulz at the last step (for logging the
        rank before and after orthogonalisation).
    n_steps : int
        Number of ``step`` calls since construction / ``reset``.

    Raises
    ------
    ValueError
        For ``beta`` outside ``[0, 1)``, ``steps`` that is not a non-negative
        integer, and an unknown or non-positive ``scale``.
    """

    def __init__(self, beta: float = 0.95, nesterov: bool = True, steps: int = 5,
                 scale="shape", eps: float = 1e-7):
        if not 0.0 <= float(beta) < 1.0:
            raise ValueError(f"Muon: beta must be in [0, 1), got {beta!r}")
        if int(steps) != steps or steps < 0:
            raise ValueError(f"Muon: steps must be a non-negative integer, got {steps!r}")
        if isinstance(scale, str):
            if scale not in ("shape", "none"):
                raise ValueError(f"Muon: scale must be 'shape', 'none', None or a positive number, "
                                 f"got {scale!r}")
        elif scale is not None and not (np.isfinite(float(scale)) and float(scale) > 0):
            raise ValueError(f"Muon: a numeric scale must be positive and finite, got {scale!r}")
        self.beta = float(beta)
        self.nesterov = bool(nesterov)
        self.steps = int(steps)
        self.scale = scale
        self.eps = float(eps)
        self.reset()

    def reset(self) -> None:
        """Clear the momentum buffer (e.g. between runs)."""
        self.buffer: np.ndarray | None = None
        self.last_pre_orth: np.ndarray | None = None
        self.n_steps = 0

    def scale_factor(self, shape) -> float:
        """The multiplier applied after Newton–Schulz for an update of ``shape``.

        Parameters
        ----------
        shape : tuple of int
            ``(rows, cols)`` of the update.

        Returns
        -------
        float
            1 for no scale, ``max(1, rows/cols)^½`` for ``"shape"``, else the
            constant factor.
        """
        if self.scale is None or self.scale == "none":
            return 1.0
        if self.scale == "shape":
            rows, cols = shape
            return float(max(1.0, rows / cols) ** 0.5)
        return float(self.scale)

    @classmethod
    def from_rule(cls, params: dict, shape: tuple[int, int]) -> "Muon":
        """The optimiser a rule's ``"muon"`` transform means.

        See docs/semantics.md (applying an update): ``muon_beta`` (0.95),
        ``muon_steps`` (5) and, with ``muon_lr``, the orthogonalised update scaled
        to ``muon_lr · max(1, rows/cols)^½`` (Keller Jordan's Muon); without it, by
        ``max(1, rows/cols)^½`` alone. Every backend
        builds its Muon here.

        Parameters
        ----------
        params : dict
            The rule's parameters.
        shape : tuple of int
            ``(rows, cols)`` of the projection's weights.

        Returns
        -------
        Muon
            The optimiser, with an empty buffer.
        """
        rows, cols = shape
        scale = (float(params["muon_lr"]) * max(1.0, rows / cols) ** 0.5
                 if "muon_lr" in params else "shape")
        return cls(beta=params.get("muon_beta", 0.95), steps=int(params.get("muon_steps", 5)),
                   scale=scale)

    def step(self, update) -> np.ndarray:
        """Accumulate ``update`` and return the orthogonalised update.

        Parameters
        ----------
        update : array_like
            Shape ``(rows, cols)``, the same at every step.

        Returns
        -------
        numpy.ndarray
            The orthogonalised update, times :meth:`scale_factor`.

        Raises
        ------
        ValueError
            For an update that is not 2-D or whose shape differs from the state's
            (use one Muon per layer).
        """
        G = _float_array(update)
        if G.ndim != 2:
            raise ValueError(f"Muon.step: expected a 2-D update, got shape {G.shape}")
        if self.buffer is None:
            self.buffer = np.zeros_like(G)
        elif self.buffer.shape != G.shape:
            raise ValueError(f"Muon.step: update shape {G.shape} differs from the state's shape "
                             f"{self.buffer.shape}; use one Muon per layer")
        beta = self.beta
        self.buffer = beta * self.buffer + (1.0 - beta) * G
        U = (1.0 - beta) * G + beta * self.buffer if self.nesterov else self.buffer.copy()
        self.last_pre_orth = U
        self.n_steps += 1
        return newton_schulz(U, steps=self.steps, eps=self.eps) * self.scale_factor(G.shape)
