"""The glimpse sensor of MPC: random saccades, multi-resolution views, pooling.

Ororbia, Friston & Rao, *Meta-Representational Predictive Coding* (arXiv
2503.21796v1), Sec. 2.1 and Appendix. An image ``o`` (``D x D``) is turned
into a sequence of ``K`` glimpses ``(g(k), a(k))``:

* a **fixation point** ``(x, y)`` (column, row, in pixel-corner coordinates,
  ``0..D``) chosen by a random policy ("involuntary saccades");
* **views** centred on it: ``C`` foveal patches arranged in a square grid
  (the paper: 2x2 patches of 8x8 overlapping by 1-2 px), ``F`` parafoveal
  and ``P`` peripheral patches of growing size (16x16, 24x24), zero-padded
  where they leave the image;
* every patch is **mean-centred** (its own mean subtracted), then
  **average-pooled** to ``S x S`` (S = 8 in the paper), flattened row-major;
* the **action code** ``a = 2 [x, y] / D - 1`` in ``[-1, 1]^2``.

One glimpse is the vector ``[g_1, ..., g_V, a]`` of width ``V*S*S + 2``, the
streams in the order fovea (grid row-major), parafovea, periphery: this is
the ``"x"`` stream of the MPC circuit (:mod:`neuro_pc.models.mpc`).

Pooling is *area* average pooling: output cell ``i`` averages the input over
``[i p/S, (i+1) p/S)`` (fractional pixels weighted by their overlap), so it is
ordinary block averaging when ``S`` divides ``p`` and the identity when
``p == S``. It preserves the mean, so centring before or after pooling is the
same.

Everything is deterministic for a seed: :meth:`GlimpseSensor.saccades` draws
fixations from ``numpy.random.default_rng(seed)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GlimpseGeometry", "GlimpseSensor", "pool_matrix", "extract_patch"]


@dataclass(frozen=True)
class GlimpseGeometry:
    """Sizes of the views (pixels of the image the sensor sees).

    image: side ``D`` of the square image.
    fovea, n_fovea, fovea_overlap: side of one foveal patch; patches in the foveal
        grid (a square number: 1, 4, 9...); pixels shared by adjacent foveal patches.
    para, periph, n_para, n_periph: sides of the parafoveal and the peripheral
        patch; how many of each (0 or 1; several identical views are allowed but
        pointless).
    pool: side ``S`` every view is pooled to.
    margin: fixations are drawn with ``margin <= x, y <= D - margin``.
    """

    image: int = 8
    fovea: int = 4
    n_fovea: int = 4
    fovea_overlap: int = 2
    para: int = 6
    n_para: int = 1
    periph: int = 8
    n_periph: int = 1
    pool: int = 4
    margin: int = 2

    def __post_init__(self):
        g = int(round(np.sqrt(self.n_fovea)))
        if g * g != self.n_fovea:
            raise ValueError(f"n_fovea must be a square number (a grid), got {self.n_fovea}")
        if not 0 <= self.fovea_overlap < max(self.fovea, 1):
            raise ValueError(f"fovea_overlap must be in [0, fovea), got {self.fovea_overlap}")
        if self.pool < 1 or self.image < 1:
            raise ValueError("image and pool must be >= 1")
        if not 0 <= self.margin <= self.image // 2:
            raise ValueError(f"margin must be in [0, image/2], got {self.margin}")

    @classmethod
    def digits(cls, **kw) -> "GlimpseGeometry":
        """Scaled geometry for the 8x8 sklearn digits (the default).

        Fovea 2x2 grid of 4x4 patches overlapping by 2 px (a 6x6 region at
        full resolution), parafovea 6x6, periphery 8x8 (the whole image when
        fixating the centre), all pooled to 4x4; fixations in ``[2, 6]^2``.
        """
        return cls(**{**dict(image=8, fovea=4, n_fovea=4, fovea_overlap=2, para=6, periph=8,
                             pool=4, margin=2), **kw})

    @classmethod
    def mnist(cls, **kw) -> "GlimpseGeometry":
        """The paper's geometry for 28x28 MNIST: fovea 2x2 grid of 8x8 (overlap 2 px),
        parafovea 16x16, periphery 24x24, all pooled to 8x8 (``g`` in R^384)."""
        return cls(**{**dict(image=28, fovea=8, n_fovea=4, fovea_overlap=2, para=16,
                             periph=24, pool=8, margin=4), **kw})

    @property
    def n_streams(self) -> int:
        return self.n_fovea + self.n_para + self.n_periph

    @property
    def stream_width(self) -> int:
        return self.pool * self.pool

    @property
    def width(self) -> int:
        """Width of one glimpse vector ``[g_1..g_V, a]``."""
        return self.n_streams * self.stream_width + 2

    @property
    def stream_names(self) -> tuple[str, ...]:
        return (tuple(f"f{i}" for i in range(self.n_fovea))
                + tuple(f"p{i}" for i in range(self.n_para))
                + tuple(f"q{i}" for i in range(self.n_periph)))

    @property
    def foveal(self) -> tuple[bool, ...]:
        return tuple([True] * self.n_fovea + [False] * (self.n_para + self.n_periph))

    def views(self, x: int, y: int) -> list[tuple[int, int, int]]:
        """``(row0, col0, size)`` of every view for fixation ``(x, y)``, stream order."""
        out = []
        g = int(round(np.sqrt(self.n_fovea)))
        step = self.fovea - self.fovea_overlap
        span = self.fovea + (g - 1) * step          # side of the whole foveal grid
        r0, c0 = y - span // 2, x - span // 2
        for i in range(g):
            for j in range(g):
                out.append((r0 + i * step, c0 + j * step, self.fovea))
        for size, n in ((self.para, self.n_para), (self.periph, self.n_periph)):
            out += [(y - size // 2, x - size // 2, size)] * n
        return out

    def action(self, x, y) -> np.ndarray:
        """``a = 2 [x, y] / D - 1`` (paper, Appendix)."""
        return 2.0 * np.array([x, y], dtype=np.float64) / self.image - 1.0


def pool_matrix(p: int, s: int) -> np.ndarray:
    """``(s, p)`` area-average pooling matrix: ``pooled = P @ patch @ P.T``.

    Row ``i`` weights input pixel ``j`` by the overlap of ``[j, j+1)`` with
    ``[i p/s, (i+1) p/s)``, divided by the bin width ``p/s``; rows sum to 1.
    """
    P = np.zeros((s, p))
    w = p / s
    for i in range(s):
        lo, hi = i * w, (i + 1) * w
        for j in range(p):
            P[i, j] = max(0.0, min(hi, j + 1) - max(lo, j)) / w
    return P


def extract_patch(image: np.ndarray, row0: int, col0: int, size: int) -> np.ndarray:
    """The ``size x size`` window of ``image`` (``(..., D, D)``) at ``(row0, col0)``,
    zero outside the image."""
    D = image.shape[-1]
    out = np.zeros(image.shape[:-2] + (size, size))
    r_lo, r_hi = max(row0, 0), min(row0 + size, D)
    c_lo, c_hi = max(col0, 0), min(col0 + size, D)
    if r_lo < r_hi and c_lo < c_hi:
        out[..., r_lo - row0:r_hi - row0, c_lo - col0:c_hi - col0] = \
            image[..., r_lo:r_hi, c_lo:c_hi]
    return out


class GlimpseSensor:
    """Turns images into glimpse vectors for a :class:`GlimpseGeometry`.

    center: subtract each patch's mean (the paper's preprocessing).
    """

    def __init__(self, geometry: GlimpseGeometry | None = None, center: bool = True):
        self.geometry = geometry or GlimpseGeometry.digits()
        self.center = bool(center)
        g = self.geometry
        self._pool = {s: pool_matrix(s, g.pool) for s in {g.fovea, g.para, g.periph}}

    def saccades(self, n: int, k: int, seed: int) -> np.ndarray:
        """``(n, k, 2)`` integer fixations ``(x, y)``, uniform on the grid
        ``[margin, D - margin]^2``, from ``default_rng(seed)``."""
        g = self.geometry
        rng = np.random.default_rng(seed)
        return rng.integers(g.margin, g.image - g.margin + 1, size=(n, k, 2))

    def fixed_saccades(self, n: int, k: int, seed: int) -> np.ndarray:
        """One random ``k``-saccade sequence from ``seed``, the same for all ``n`` images."""
        seq = self.saccades(1, k, seed)
        return np.broadcast_to(seq, (n, k, 2)).copy()

    def glimpse(self, images: np.ndarray, fixations: np.ndarray) -> np.ndarray:
        """Glimpse vectors ``(n, width)`` of ``images`` ``(n, D*D)`` or ``(n, D, D)``
        at one fixation per image, ``fixations`` ``(n, 2)`` (or one ``(2,)`` for all)."""
        g = self.geometry
        imgs = np.asarray(images, dtype=np.float64).reshape(-1, g.image, g.image)
        fix = np.broadcast_to(np.asarray(fixations), (len(imgs), 2))
        out = np.zeros((len(imgs), g.width))
        for (x, y) in {tuple(map(int, f)) for f in fix}:
            rows = np.flatnonzero((fix[:, 0] == x) & (fix[:, 1] == y))
            parts = []
            for (r0, c0, size) in g.views(x, y):
                patch = extract_patch(imgs[rows], r0, c0, size)
                if self.center:
                    patch = patch - patch.mean(axis=(-2, -1), keepdims=True)
                P = self._pool[size]
                parts.append((P @ patch @ P.T).reshape(len(rows), -1))
            parts.append(np.broadcast_to(g.action(x, y), (len(rows), 2)))
            out[rows] = np.concatenate(parts, axis=1)
        return out

    def sequence(self, images: np.ndarray, fixations: np.ndarray) -> np.ndarray:
        """``(n, K, width)`` glimpses of ``images`` for ``fixations`` ``(n, K, 2)``."""
        fixations = np.asarray(fixations)
        return np.stack([self.glimpse(images, fixations[:, k]) for k in range(fixations.shape[1])],
                        axis=1)

    def split(self, glimpses: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Split glimpse vectors ``(..., width)`` into per-stream ``(..., S*S)`` and ``a``."""
        g = self.geometry
        w = g.stream_width
        streams = [glimpses[..., v * w:(v + 1) * w] for v in range(g.n_streams)]
        return streams, glimpses[..., -2:]
