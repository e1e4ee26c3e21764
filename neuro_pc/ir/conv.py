"""Convolutional connectivity: the geometry of a conv projection and its NumPy meaning.

A projection with ``conv=Conv(...)`` connects a population holding a stack of
feature maps ``(C, H, W)`` (flattened in C order: unit ``c*H*W + y*W + x``) to
one holding ``(O, H', W')`` through **one shared kernel** ``K`` of shape
``(O, C*kh*kw)`` (the ``(O, C, kh, kw)`` kernel with its last three axes
flattened, C order). With zero padding ``(ph, pw)`` and stride ``(sh, sw)``
(cross-correlation, as PyTorch's ``conv2d``)::

    out[o, i, j] = sum_{c, u, v} K[o, c, u, v] * in_pad[c, i*sh + u, j*sw + v]

    H' = (H + 2 ph - kh) // sh + 1,   W' = (W + 2 pw - kw) // sw + 1

The projection is the dense projection whose matrix ``E(K)`` (``(O*H'*W',
C*H*W)``, :func:`expand`) has ``E[(o,i,j), (c,y,x)] = K[o,c,u,v]`` where
``y = i*sh + u - ph``, ``x = j*sw + v - pw`` lie inside the image, and 0
elsewhere: every backend must compute ``E(K) @ source``. ``Conv(...,
transpose=True)`` is the transposed convolution of the same geometry: its
source holds the ``(O, H', W')`` maps, its target the ``(C, H, W)`` ones and its
matrix is ``E(K)ᵀ`` (what carries an error back through a convolution: BP's
tied ``W_{l+1}ᵀ``, FA's fixed random ``B_l``, Kolen–Pollack's mirrored kernel).

**Learning on a shared kernel.** A rule ``dw = Σ_k c_k post_k pre_k syn_k``
means, for the dense matrix, ``dE[i, j]`` per synapse (docs/rules.md). Every
synapse of one kernel entry holds the same weight, so the kernel's update is
the **sum of the per-synapse (per-position) updates of its synapses**::

    dK[o, c, u, v] = sum over positions (i, j) with (y, x) inside the image of
                     dE[(o, i, j), (c, y, x)]

i.e. ``dK = Eᵀ(dE)``, the adjoint of the expansion (for a transposed conv,
the same sum with ``dE`` transposed). For ``dw = -eta * post.delta * pre.r``
this is exactly the gradient of a convolution's shared kernel. A factor a term
lacks is 1 on every synapse, so a pure decay ``-lam * w`` becomes ``-lam *
n(u, v) * K``, ``n(u, v)`` the number of positions at which kernel entry
``(u, v)`` meets the image (:meth:`ConvOp.counts`). In batched mode the update
is, as for dense projections, the batch mean.

:class:`ConvOp` computes all of it fast (im2col with
:func:`numpy.lib.stride_tricks.sliding_window_view`, one BLAS product per batch
element); :func:`expand` and :func:`kernel_update_from_dense` are the
definition written out, for tests and for backends that need the matrix.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Conv", "ConvOp", "expand", "kernel_update_from_dense", "conv_output_size",
           "synapse_list", "correlation_form"]


def _pair(v, what: str) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            return tuple(v)   # validation names the problem
        return (v[0], v[1])
    return (v, v)


@dataclass(frozen=True)
class Conv:
    """Convolutional connectivity of a projection (see the module docstring).

    Attributes
    ----------
    in_shape : tuple of int
        ``(C, H, W)`` of the convolution's input (the source, or the target if
        ``transpose``).
    out_channels : int
        ``O``.
    kernel, stride, padding : tuple of int
        ``(kh, kw)``, ``(sh, sw)``, ``(ph, pw)`` (an int means both).
    transpose : bool
        The projection carries ``E(K)ᵀ``, from the ``(O, H', W')`` maps to the
        ``(C, H, W)`` ones.
    """

    in_shape: tuple[int, int, int]
    out_channels: int
    kernel: tuple[int, int] = (3, 3)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    transpose: bool = False

    def __post_init__(self):
        object.__setattr__(self, "in_shape", tuple(self.in_shape)
                           if isinstance(self.in_shape, (list, tuple)) else self.in_shape)
        for f in ("kernel", "stride", "padding"):
            object.__setattr__(self, f, _pair(getattr(self, f), f))

    # -- geometry ---------------------------------------------------------------------
    @property
    def out_shape(self) -> tuple[int, int, int]:
        """``(O, H', W')``."""
        C, H, W = self.in_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        return (self.out_channels, conv_output_size(H, kh, sh, ph),
                conv_output_size(W, kw, sw, pw))

    @property
    def in_size(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def out_size(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def positions(self) -> int:
        """``H' * W'``: how many positions share the kernel."""
        return self.out_shape[1] * self.out_shape[2]

    @property
    def patch(self) -> int:
        """``C * kh * kw``: synapses into one output unit (at most)."""
        return self.in_shape[0] * self.kernel[0] * self.kernel[1]

    @property
    def weight_shape(self) -> tuple[int, int]:
        """The stored kernel's shape ``(O, C*kh*kw)``."""
        return (self.out_channels, self.patch)

    @property
    def source_size(self) -> int:
        return self.out_size if self.transpose else self.in_size

    @property
    def target_size(self) -> int:
        return self.in_size if self.transpose else self.out_size

    @property
    def fans(self) -> tuple[int, int]:
        """``(fan_in, fan_out)`` of the forward convolution: ``C*kh*kw``, ``O*kh*kw``."""
        k = self.kernel[0] * self.kernel[1]
        return self.in_shape[0] * k, self.out_channels * k

    def transposed(self) -> "Conv":
        """The same geometry, the other way.

        Returns
        -------
        Conv
            A copy with ``transpose`` flipped.
        """
        return Conv(self.in_shape, self.out_channels, self.kernel, self.stride, self.padding,
                    not self.transpose)

    def same_geometry(self, other: "Conv") -> bool:
        """Whether ``other`` has this geometry, whatever its direction.

        Parameters
        ----------
        other : Conv
            The geometry compared.

        Returns
        -------
        bool
            True when the input shape, channels, kernel, stride and padding are
            equal (``transpose`` is not compared).
        """
        return (self.in_shape, self.out_channels, self.kernel, self.stride, self.padding) == \
            (other.in_shape, other.out_channels, other.kernel, other.stride, other.padding)

    def describe(self) -> str:
        """One line describing the geometry.

        Returns
        -------
        str
            E.g. ``"conv 1x28x28 -> 16x28x28, kernel 3x3, stride 1x1, padding 1x1"``
            (``"(transposed)"`` after the shapes of a transposed convolution).
        """
        C, H, W = self.in_shape
        O, Ho, Wo = self.out_shape
        k, s, p = self.kernel, self.stride, self.padding
        fwd = f"{C}x{H}x{W} -> {O}x{Ho}x{Wo}"
        if self.transpose:
            fwd = f"{O}x{Ho}x{Wo} -> {C}x{H}x{W} (transposed)"
        return (f"conv {fwd}, kernel {k[0]}x{k[1]}, stride {s[0]}x{s[1]}, "
                f"padding {p[0]}x{p[1]}")

    def problem(self) -> str | None:
        """Why this geometry is unusable (None if it is fine), one sentence.

        Returns
        -------
        str or None
            The problem: malformed shapes, values that are not integers in range, a
            kernel larger than the padded input, or padding not smaller than the
            kernel.
        """
        ok = (len(self.in_shape) == 3 and len(self.kernel) == 2 and len(self.stride) == 2
              and len(self.padding) == 2)
        if not ok:
            return ("in_shape is (C, H, W) and kernel, stride, padding are an int or a pair; "
                    f"got in_shape={self.in_shape!r}, kernel={self.kernel!r}, "
                    f"stride={self.stride!r}, padding={self.padding!r}")
        for name, vals, least in (("in_shape", self.in_shape, 1),
                                  ("out_channels", (self.out_channels,), 1),
                                  ("kernel", self.kernel, 1), ("stride", self.stride, 1),
                                  ("padding", self.padding, 0)):
            for v in vals:
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
                    return (f"{name} must hold integers >= {least}, got "
                            f"{vals if len(vals) > 1 else vals[0]!r}")
        C, H, W = self.in_shape
        (kh, kw), (ph, pw) = self.kernel, self.padding
        if kh > H + 2 * ph or kw > W + 2 * pw:
            return (f"the {kh}x{kw} kernel is larger than the {H + 2 * ph}x{W + 2 * pw} padded "
                    f"input ({H}x{W} with padding {ph}x{pw}); use a smaller kernel or more "
                    "padding")
        if ph >= kh or pw >= kw:
            return (f"padding {ph}x{pw} is not smaller than the {kh}x{kw} kernel: some outputs "
                    "would see only padding; use padding < kernel")
        return None


def conv_output_size(n: int, k: int, s: int, p: int) -> int:
    """``(n + 2p - k) // s + 1``."""
    return (n + 2 * p - k) // s + 1


# -- the definition, written out -------------------------------------------------------------

def _index_map(conv: Conv):
    """``(rows, cols, kernel_index)`` of every synapse of ``E(K)``: output unit, input
    unit and the flat kernel entry it holds (only inputs inside the image)."""
    C, H, W = conv.in_shape
    O, Ho, Wo = conv.out_shape
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel, conv.stride, conv.padding
    o, i, j, c, u, v = np.meshgrid(np.arange(O), np.arange(Ho), np.arange(Wo), np.arange(C),
                                   np.arange(kh), np.arange(kw), indexing="ij")
    y, x = i * sh + u - ph, j * sw + v - pw
    inside = (y >= 0) & (y < H) & (x >= 0) & (x < W)
    rows = ((o * Ho + i) * Wo + j)[inside]
    cols = ((c * H + y) * W + x)[inside]
    kidx = (o * conv.patch + (c * kh + u) * kw + v)[inside]
    return rows, cols, kidx


def synapse_list(conv: Conv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every synapse of the projection: ``(target unit, source unit, flat kernel
    entry)`` arrays (only inputs inside the image; for a transposed convolution the
    roles of the two sides are swapped). A backend without weight sharing gives
    synapse ``k`` the weight ``K.flat[kernel[k]]``."""
    rows, cols, kidx = _index_map(conv)
    return (cols, rows, kidx) if conv.transpose else (rows, cols, kidx)


def correlation_form(conv: Conv, kernel):
    """The projection as a forward convolution (a cross-correlation) from its source
    to its target: ``(geometry, kernel)``, or None when it has none. A forward
    convolution is its own; a transposed one with stride 1 is the correlation of
    its ``(O, H', W')`` maps, padded by ``k - 1 - p``, with the kernel flipped in
    space and its channel axes swapped (``(C, O*kh*kw)``); a transposed one with
    stride > 1 spreads its inputs apart (zeros between them), which no
    correlation of the unspread maps expresses: None."""
    K = np.asarray(kernel)
    if not conv.transpose:
        return conv, K
    if conv.stride != (1, 1):
        return None
    C, H, W = conv.in_shape
    O, Ho, Wo = conv.out_shape
    (kh, kw), (ph, pw) = conv.kernel, conv.padding
    flipped = K.reshape(O, C, kh, kw).transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
    g = Conv((O, Ho, Wo), C, kernel=(kh, kw), stride=1, padding=(kh - 1 - ph, kw - 1 - pw))
    return g, np.ascontiguousarray(flipped).reshape(C, O * kh * kw)


def expand(conv: Conv, kernel) -> np.ndarray:
    """The dense matrix ``E(K)`` ``(O*H'*W', C*H*W)`` (its transpose if
    ``conv.transpose``): the projection's effective matrix, ``(n_target, n_source)``."""
    K = np.asarray(kernel)
    rows, cols, kidx = _index_map(conv)
    E = np.zeros((conv.out_size, conv.in_size), dtype=np.result_type(K.dtype, np.float32))
    E[rows, cols] = K.reshape(-1)[kidx]
    return E.T.copy() if conv.transpose else E


def kernel_update_from_dense(conv: Conv, dE) -> np.ndarray:
    """``Eᵀ(dE)``: the kernel update of a per-synapse update ``dE`` of the dense
    matrix ``(n_target, n_source)``: each kernel entry sums the entries of its
    synapses (the per-position terms)."""
    dE = np.asarray(dE, dtype=np.float64)
    if conv.transpose:
        dE = dE.T
    rows, cols, kidx = _index_map(conv)
    out = np.zeros(conv.out_channels * conv.patch)
    np.add.at(out, kidx, dE[rows, cols])
    return out.reshape(conv.weight_shape)


# -- fast: im2col + BLAS ------------------------------------------------------------------------

class ConvOp:
    """The fast form of one convolution geometry, batch-first on flat arrays.

    ``conv(x, K)``: ``(B, C*H*W) -> (B, O*H'*W')``; ``conv_t(y, K)``: ``(B, O*H'*W')
    -> (B, C*H*W)`` (the transposed convolution); ``grad(a, b)``: ``Σ_batch Σ_positions``
    of the products of an out-side factor ``a`` ``(B, O*H'*W')`` and the input
    patches of an in-side factor ``b`` ``(B, C*H*W)``, shape ``(O, C*kh*kw)``
    (``a`` or ``b`` None: ones). :meth:`apply` and :meth:`kernel_grad` take the
    projection's direction into account.

    The dtype follows the inputs (float32 stays float32).

    Parameters
    ----------
    conv : Conv
        The geometry.
    cache : bool, default False
        Keep the patches of the last input of :meth:`conv` (with a reference to
        that input, so that they are reused only for the very same array: state
        arrays are never modified in place) and reuse them in :meth:`grad` (the
        reference backend's use: the forward pass and the kernel update of one
        window read the same presynaptic activity); a caller that modifies its
        arrays in place must leave it false.
    """

    def __init__(self, conv: Conv, cache: bool = False):
        self.geom = conv
        self.cache = bool(cache)
        self.C, self.H, self.W = conv.in_shape
        self.O, self.Ho, self.Wo = conv.out_shape
        self.kh, self.kw = conv.kernel
        self.sh, self.sw = conv.stride
        self.ph, self.pw = conv.padding
        self._last = None         # (x, cols)
        self._counts = {}

    # patches ---------------------------------------------------------------------
    def cols(self, x) -> np.ndarray:
        """im2col: ``(B, C*H*W) -> (B, C*kh*kw, H'*W')`` (a copy).

        Parameters
        ----------
        x : numpy.ndarray
            The inputs ``(B, C*H*W)``.

        Returns
        -------
        numpy.ndarray
            The patches ``(B, C*kh*kw, H'*W')``.
        """
        last = self._last
        if last is not None and last[0] is x:
            return last[1]
        x = np.asarray(x)
        B = x.shape[0]
        x4 = x.reshape(B, self.C, self.H, self.W)
        if self.ph or self.pw:
            x4 = np.pad(x4, ((0, 0), (0, 0), (self.ph, self.ph), (self.pw, self.pw)))
        win = np.lib.stride_tricks.sliding_window_view(x4, (self.kh, self.kw), axis=(2, 3))
        win = win[:, :, ::self.sh, ::self.sw][:, :, :self.Ho, :self.Wo]  # (B, C, Ho, Wo, kh, kw)
        cols = np.ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3)).reshape(
            B, self.C * self.kh * self.kw, self.Ho * self.Wo)
        if self.cache:
            self._last = (x, cols)
        return cols

    def col2im(self, cols) -> np.ndarray:
        """The adjoint of :meth:`cols`: ``(B, C*kh*kw, H'*W') -> (B, C*H*W)``.

        Each patch entry is added back where it came from (padding dropped).

        Parameters
        ----------
        cols : numpy.ndarray
            Patches ``(B, C*kh*kw, H'*W')``.

        Returns
        -------
        numpy.ndarray
            ``(B, C*H*W)``.
        """
        B = cols.shape[0]
        c6 = cols.reshape(B, self.C, self.kh, self.kw, self.Ho, self.Wo)
        Hp, Wp = self.H + 2 * self.ph, self.W + 2 * self.pw
        out = np.zeros((B, self.C, Hp, Wp), dtype=cols.dtype)
        he, we = self.sh * (self.Ho - 1) + 1, self.sw * (self.Wo - 1) + 1
        for u in range(self.kh):
            for v in range(self.kw):
                out[:, :, u:u + he:self.sh, v:v + we:self.sw] += c6[:, :, u, v]
        out = out[:, :, self.ph:self.ph + self.H, self.pw:self.pw + self.W]
        return np.ascontiguousarray(out).reshape(B, -1)

    # products --------------------------------------------------------------------
    def conv(self, x, K) -> np.ndarray:
        """``E(K) @ x`` per sample: ``(B, C*H*W) -> (B, O*H'*W')``.

        Parameters
        ----------
        x : numpy.ndarray
            The inputs ``(B, C*H*W)``.
        K : numpy.ndarray
            The kernel ``(O, C*kh*kw)``.

        Returns
        -------
        numpy.ndarray
            ``(B, O*H'*W')``.
        """
        cols = self.cols(x)
        return np.matmul(K, cols).reshape(cols.shape[0], -1)

    def conv_t(self, y, K) -> np.ndarray:
        """``E(K)ᵀ @ y`` per sample: ``(B, O*H'*W') -> (B, C*H*W)``.

        Parameters
        ----------
        y : numpy.ndarray
            The maps ``(B, O*H'*W')``.
        K : numpy.ndarray
            The kernel ``(O, C*kh*kw)``.

        Returns
        -------
        numpy.ndarray
            ``(B, C*H*W)``.
        """
        y = np.asarray(y)
        B = y.shape[0]
        cols = np.matmul(K.T, y.reshape(B, self.O, self.Ho * self.Wo))
        return self.col2im(cols)

    def apply(self, src, K, transpose: bool | None = None) -> np.ndarray:
        """What the projection adds to its target's port.

        Parameters
        ----------
        src : numpy.ndarray
            The source's activity ``(B, n_source)``.
        K : numpy.ndarray
            The kernel ``(O, C*kh*kw)``.
        transpose : bool, optional
            Apply the transposed convolution (default the geometry's own
            direction).

        Returns
        -------
        numpy.ndarray
            :meth:`conv_t` or :meth:`conv` of ``src``, ``(B, n_target)``.
        """
        t = self.geom.transpose if transpose is None else transpose
        return self.conv_t(src, K) if t else self.conv(src, K)

    def grad(self, a, b, dtype=None) -> np.ndarray:
        """``Σ_batch Σ_positions a[o, pos] * patch(b)[c, u, v, pos]``, shape ``(O, C*kh*kw)``.

        Parameters
        ----------
        a : numpy.ndarray or None
            The out-side factor ``(B, O*H'*W')``; None means ones.
        b : numpy.ndarray or None
            The in-side factor ``(B, C*H*W)``; None means ones.
        dtype : data-type, optional
            The dtype of :meth:`counts` when both are None (default float64).

        Returns
        -------
        numpy.ndarray
            ``(O, C*kh*kw)``.
        """
        if a is None and b is None:
            return self.counts(dtype or np.float64)
        if b is None:
            a = np.asarray(a)
            b = np.ones((a.shape[0], self.C * self.H * self.W), dtype=a.dtype)
        cols = self.cols(b)
        if a is None:
            # Σ over positions of each patch entry: no product needed
            return np.broadcast_to(cols.sum(axis=(0, 2))[None, :], (self.O, cols.shape[1])).copy()
        a3 = np.asarray(a).reshape(cols.shape[0], self.O, self.Ho * self.Wo)
        # one product per batch element, summed: no transposed copies (BLAS reads
        # the transposed operand in place), faster than one tensordot here
        return np.matmul(a3, cols.transpose(0, 2, 1)).sum(axis=0)

    def kernel_grad(self, post, pre, dtype=None) -> np.ndarray:
        """The summed per-position products of a rule term ``post ⊗ pre`` on this projection.

        Parameters
        ----------
        post : numpy.ndarray or None
            The factor on the projection's target; None: ones.
        pre : numpy.ndarray or None
            The factor on the projection's source; None: ones.
        dtype : data-type, optional
            As for :meth:`grad`.

        Returns
        -------
        numpy.ndarray
            ``(O, C*kh*kw)`` (:meth:`grad` with the factors in the geometry's
            direction).
        """
        if self.geom.transpose:
            return self.grad(pre, post, dtype)
        return self.grad(post, pre, dtype)

    def counts(self, dtype=np.float64) -> np.ndarray:
        """``n(u, v)`` per kernel entry: positions at which it meets the image.

        Parameters
        ----------
        dtype : data-type, default numpy.float64
            The dtype of the result (cached per dtype).

        Returns
        -------
        numpy.ndarray
            The counts broadcast to ``(O, C*kh*kw)``.
        """
        key = np.dtype(dtype).name
        if key not in self._counts:
            ones = np.ones((1, self.C * self.H * self.W), dtype=dtype)
            saved = self._last
            c = self.cols(ones).sum(axis=(0, 2))
            self._last = saved
            self._counts[key] = np.broadcast_to(c[None, :], (self.O, c.shape[0])).copy()
        return self._counts[key]

    def macs(self) -> int:
        """Multiply-adds of one sample's convolution (``O*H'*W'*C*kh*kw``).

        Returns
        -------
        int
            The count.
        """
        return self.O * self.Ho * self.Wo * self.C * self.kh * self.kw
