"""Array-level fixed-point quantisation for neuromorphic targets (NumPy only).

Two number formats are used on a chip like Loihi 2, and this module handles
both, as pure functions of arrays:

**Block floating point for weights.** A weight matrix is stored as integer
*mantissas* sharing one power-of-two *exponent*::

    W  ≈  mantissa * 2**exp                                          (1)

``mantissa`` has the shape of ``W`` and ``mantissa_bits`` bits in one of three
sign modes (the names and ranges of Lava's ``lava.utils.weightutils.SignMode``):

==============  ==========================================  ===================
sign_mode       mantissa range                              8-bit example
==============  ==========================================  ===================
``mixed``       ``[-2**(b-1), 2**(b-1) - 1]`` (sign in b)   ``[-128, 127]``
``excitatory``  ``[0, 2**b - 1]``                           ``[0, 255]``
``inhibitory``  ``[-(2**b - 1), 0]``                        ``[-255, 0]``
==============  ==========================================  ===================

``exp`` is an ordinary integer in the units of ``W``: nothing else scales the
values, so (1) is the whole definition. How the same numbers are written as
the parameters of a Lava ``Dense`` process (``weights``, ``weight_exp``,
``num_weight_bits``, ``sign_mode``) is :meth:`QuantizedWeights.to_lava_dense`.

**Fixed point for state.** A state variable ``x`` (a voltage, a current, a
trace) is one signed or unsigned integer of ``bits`` bits with ``frac_bits``
fractional bits::

    x  ≈  q * 2**(-frac_bits)                                        (2)

and what happens when ``q`` leaves its range is the hardware's overflow rule:
saturation (clamp), Lava's symmetric clamp, or two's-complement wrap
(:func:`clamp_to_bits`).

Rounding modes, shared by both (``x`` is the real value in LSB units):

* ``"nearest"``: round to the nearest integer, **ties to even** (``np.rint``;
  2.5 -> 2, 3.5 -> 4, -2.5 -> -2). Unbiased on ties; error <= 1/2 LSB.
* ``"truncate"``: drop the fractional bits as the hardware's arithmetic right
  shift does, i.e. floor (towards -inf); for ``sign_mode="inhibitory"``
  weights the *magnitude* is truncated (towards zero), as Lava's
  ``truncate_weights`` does. Error < 1 LSB.
* ``"stochastic"``: ``floor(x) + (u < frac(x))`` with ``u ~ U[0, 1)`` drawn
  from ``np.random.default_rng(seed)``; unbiased in expectation; needs an
  explicit ``seed``. Error < 1 LSB.

No function here keeps state or reads a global random generator.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

SignMode = Literal["mixed", "excitatory", "inhibitory"]
Rounding = Literal["nearest", "truncate", "stochastic"]
Overflow = Literal["saturate", "saturate_symmetric", "wrap"]

SIGN_MODES: tuple[str, ...] = ("mixed", "excitatory", "inhibitory")
ROUNDINGS: tuple[str, ...] = ("nearest", "truncate", "stochastic")
OVERFLOWS: tuple[str, ...] = ("saturate", "saturate_symmetric", "wrap")

#: Largest integer width handled (values are held in ``np.int64``).
MAX_BITS = 62

#: Lava's maximum weight width (``num_weight_bits`` <= 8; ``W_WEIGHTS_U = 8`` in
#: ``lava/magma/core/learning/constants.py``). Used only by ``to_lava_dense``.
LAVA_MAX_WEIGHT_BITS = 8


class QuantizationError(ValueError):
    """An input that cannot be quantised as asked; the message says why."""


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------
def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise QuantizationError(f"unknown {name} {value!r}; valid: {valid}")
    return value


def _check_bits(name: str, bits: int, lowest: int = 1) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise QuantizationError(f"{name} must be an int, got {bits!r}")
    if not lowest <= int(bits) <= MAX_BITS:
        raise QuantizationError(
            f"{name} must be between {lowest} and {MAX_BITS}, got {bits}")
    return int(bits)


def _as_real_array(name: str, x) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                   or arr.dtype == bool):
        raise QuantizationError(f"{name} must be a real numeric array, "
                                f"got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise QuantizationError(f"{name} must be real, got complex values")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise QuantizationError(f"{name} contains NaN or infinite values")
    return arr


def mantissa_range(mantissa_bits: int, sign_mode: str = "mixed") -> tuple[int, int]:
    """Inclusive integer range ``(lo, hi)`` of a weight mantissa.

    mixed: ``[-2**(b-1), 2**(b-1)-1]`` (the sign takes one of the ``b`` bits,
    so ``b = 1`` holds only ``{-1, 0}``, as in Lava);
    excitatory: ``[0, 2**b-1]``; inhibitory: ``[-(2**b-1), 0]`` (sign implied
    by the mode, as in Lava's ``SignMode``).

    Parameters
    ----------
    mantissa_bits : int
        ``b``, the mantissa width (1 to :data:`MAX_BITS`).
    sign_mode : str, default "mixed"
        ``"mixed"`` | ``"excitatory"`` | ``"inhibitory"``.

    Returns
    -------
    lo, hi : int
        The inclusive range.

    Raises
    ------
    QuantizationError
        For an unknown ``sign_mode`` or a width that is not an int in range.
    """
    _check_choice("sign_mode", sign_mode, SIGN_MODES)
    b = _check_bits("mantissa_bits", mantissa_bits)
    if sign_mode == "mixed":
        return -(1 << (b - 1)), (1 << (b - 1)) - 1
    if sign_mode == "excitatory":
        return 0, (1 << b) - 1
    return -((1 << b) - 1), 0


def integer_range(bits: int, signed: bool = True) -> tuple[int, int]:
    """Inclusive range of a ``bits``-wide integer: two's complement if signed."""
    b = _check_bits("bits", bits)
    if signed:
        return -(1 << (b - 1)), (1 << (b - 1)) - 1
    return 0, (1 << b) - 1


def determine_sign_mode(W) -> str:
    """The narrowest sign mode that holds ``W``, by Lava's rule.

    ``min(W) >= 0`` -> ``"excitatory"`` (so an all-zero matrix is
    excitatory), ``max(W) <= 0`` -> ``"inhibitory"``, else ``"mixed"``
    (``lava.utils.weightutils.determine_sign_mode``).

    Parameters
    ----------
    W : array_like
        Real, finite weights.

    Returns
    -------
    str
        ``"excitatory"``, ``"inhibitory"`` or ``"mixed"``.

    Raises
    ------
    QuantizationError
        For an array that is not real and numeric, or holds NaN or inf.
    """
    arr = _as_real_array("W", W)
    if arr.size == 0 or arr.min() >= 0:
        return "excitatory"
    if arr.max() <= 0:
        return "inhibitory"
    return "mixed"


def _round(x: np.ndarray, rounding: str, seed: int | None,
           toward_zero_for_negative: bool = False) -> np.ndarray:
    """Round real ``x`` (in LSB units) to integers (float64 array)."""
    if rounding == "nearest":
        return np.rint(x)  # IEEE round-half-to-even
    if rounding == "truncate":
        return np.ceil(x) if toward_zero_for_negative else np.floor(x)
    if seed is None:
        raise QuantizationError(
            "rounding='stochastic' needs an explicit seed (an int); "
            "results must be reproducible")
    rng = np.random.default_rng(seed)
    lower = np.floor(x)
    frac = x - lower
    return lower + (rng.random(x.shape) < frac)


# --------------------------------------------------------------------------
# error report
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class ErrorReport:
    """How far a quantised array is from the original (same units as it).

    Attributes
    ----------
    max_abs : float
        ``max |x - x_q|``.
    rms : float
        ``sqrt(mean((x - x_q)**2))``.
    rel_fro : float
        ``||x - x_q||_F / ||x||_F`` (0 when both are 0).
    n_saturated : int
        Entries whose rounded value fell outside the representable range and
        were clamped (or wrapped).
    lsb : float
        The value of one LSB, ``2**exp`` (weights) or ``2**-frac_bits`` (state).
    n_zeroed : int
        Nonzero entries that became 0 (a single large entry that sets a shared
        exponent zeroes the small ones while ``rel_fro`` stays small).
    n_nonzero : int
        Nonzero entries of the original.
    """

    max_abs: float
    rms: float
    rel_fro: float
    n_saturated: int
    lsb: float
    n_zeroed: int = 0
    n_nonzero: int = 0

    @property
    def zeroed_fraction(self) -> float:
        return self.n_zeroed / self.n_nonzero if self.n_nonzero else 0.0


def error_report(x, x_q, *, lsb: float, n_saturated: int = 0) -> ErrorReport:
    """Build an :class:`ErrorReport` for original ``x`` and dequantised ``x_q``."""
    x = np.asarray(x, dtype=np.float64)
    x_q = np.asarray(x_q, dtype=np.float64)
    if x.shape != x_q.shape:
        raise QuantizationError(f"shapes differ: {x.shape} vs {x_q.shape}")
    if x.size == 0:
        return ErrorReport(0.0, 0.0, 0.0, int(n_saturated), float(lsb))
    nonzero = x != 0
    zeroed = int(np.count_nonzero(nonzero & (x_q == 0)))
    n_nonzero = int(np.count_nonzero(nonzero))
    err = (x - x_q).ravel()
    max_abs = float(np.max(np.abs(err)))
    # norms computed on scaled copies, so huge or tiny values neither
    # overflow nor underflow when squared
    scale = max(max_abs, float(np.max(np.abs(x))))
    if scale == 0.0:
        return ErrorReport(0.0, 0.0, 0.0, int(n_saturated), float(lsb), zeroed, n_nonzero)
    e_s = err / scale
    x_s = x.ravel() / scale
    err_norm = float(np.sqrt(np.sum(e_s * e_s)))
    ref_norm = float(np.sqrt(np.sum(x_s * x_s)))
    rel = err_norm / ref_norm if ref_norm > 0.0 else float("inf")
    return ErrorReport(
        max_abs=max_abs,
        rms=float(scale * np.sqrt(np.mean(e_s * e_s))),
        rel_fro=rel,
        n_saturated=int(n_saturated),
        lsb=float(lsb),
        n_zeroed=zeroed,
        n_nonzero=n_nonzero,
    )


# --------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class LavaDenseWeights:
    """Parameters of a Lava ``Dense``/``Sparse`` process in ``fixed_pt``.

    Effective integer weight seen by the post-synaptic neuron (before its own
    shifts, e.g. ``act_shift`` of Lava's LIF): ``weights * 2**weight_exp``.

    Attributes
    ----------
    weights : numpy.ndarray
        int32 array ``(n_post, n_pre)`` in Lava's 8-bit weight register
        convention: ``weights = mantissa * 2**(8 - num_weight_bits + is_mixed)``,
        so it lies in ``[-256, 255]`` and survives Lava's own ``clip_weights`` and
        ``truncate_weights`` unchanged.
    weight_exp : int
        The shift the synapse applies to the *accumulated* input
        (``a_out = (weights @ s) << weight_exp``, arithmetic right shift for
        negative values, see ``lava/proc/dense/models.py``).
    num_weight_bits : int
        As given to ``Dense``.
    sign_mode : str
        As given to ``Dense``.
    """

    weights: np.ndarray
    weight_exp: int
    num_weight_bits: int
    sign_mode: str

    def effective(self) -> np.ndarray:
        """``weights * 2**weight_exp`` as float64, shape of ``weights``.

        Returns
        -------
        numpy.ndarray
            The effective integer weights, as float64.
        """
        return np.ldexp(self.weights.astype(np.float64), self.weight_exp)


@dataclass(frozen=True, eq=False)
class QuantizedWeights:
    """A weight matrix as shared-exponent integer mantissas.

    ``W ≈ mantissa * 2**exp`` (see the module docstring).

    Attributes
    ----------
    mantissa : numpy.ndarray
        int64 array, shape of the original ``W``, inside
        :func:`mantissa_range` ``(mantissa_bits, sign_mode)``.
    exp : int
        Shared exponent (units of ``W``).
    mantissa_bits : int
        Bits per mantissa.
    sign_mode : str
        ``"mixed"`` | ``"excitatory"`` | ``"inhibitory"``.
    rounding : str
        The rounding mode used.
    error : ErrorReport
        Against the original ``W``.
    """

    mantissa: np.ndarray
    exp: int
    mantissa_bits: int
    sign_mode: str
    rounding: str
    error: ErrorReport

    @property
    def lsb(self) -> float:
        """Value of one mantissa step, ``2**exp`` (units of ``W``)."""
        return float(np.ldexp(1.0, self.exp))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.mantissa.shape

    def dequantize(self) -> np.ndarray:
        """``mantissa * 2**exp`` as float64 (exact for ``abs(exp) < ~1000``).

        Returns
        -------
        numpy.ndarray
            float64, the shape of ``mantissa``.
        """
        return np.ldexp(self.mantissa.astype(np.float64), self.exp)

    def compact(self) -> "QuantizedWeights":
        """The same values with the fewest mantissa bits.

        Shifts out the trailing zero bits all non-zero mantissas share (into
        ``exp``) and keeps the smallest ``mantissa_bits`` that still holds the
        result in this sign mode; the dequantised values do not change. For an
        integer matrix this is the ``(mantissa, num_weight_bits)`` that Lava's
        ``optimize_weight_bits(..., loihi2=True)`` computes.

        Returns
        -------
        QuantizedWeights
            A new object (an all-zero matrix gets 1 mantissa bit).
        """
        m = self.mantissa
        nz = m[m != 0]
        if nz.size == 0:
            return QuantizedWeights(m.copy(), self.exp, 1, self.sign_mode,
                                    self.rounding, self.error)
        shift = 0
        while np.all(nz % (1 << (shift + 1)) == 0):
            shift += 1
        m2 = m >> shift  # exact: every entry divisible by 2**shift
        lo, hi = int(m2.min()), int(m2.max())
        bits = 1
        while True:
            rlo, rhi = mantissa_range(bits, self.sign_mode)
            if rlo <= lo and hi <= rhi:
                break
            bits += 1
        return QuantizedWeights(m2, self.exp + shift, bits, self.sign_mode,
                                self.rounding, self.error)

    def to_lava_dense(self, state_frac_bits: int = 0) -> LavaDenseWeights:
        """These weights as Lava ``Dense`` fixed-point parameters.

        With ``state_frac_bits`` fractional bits in the accumulator,

        ``weights    = mantissa * 2**(8 - mantissa_bits + is_mixed)``
        ``weight_exp = exp + state_frac_bits - (8 - mantissa_bits + is_mixed)``

        so ``weights * 2**weight_exp == mantissa * 2**(exp + state_frac_bits)``,
        i.e. :meth:`dequantize` expressed in accumulator LSBs. This is the
        ``w_scale = 8 - num_weight_bits + weight_exp + isMixed()`` formula of
        ``lava/proc/dense/process.py``.

        Parameters
        ----------
        state_frac_bits : int, default 0
            The number of fractional bits of the integer the synaptic input is
            added to (one dendritic-accumulator LSB = ``2**-state_frac_bits`` units
            of ``W * input``).

        Returns
        -------
        LavaDenseWeights
            The ``Dense`` parameters.

        Raises
        ------
        QuantizationError
            If ``mantissa_bits > 8`` (Lava's weight width).
        """
        b = self.mantissa_bits
        if b > LAVA_MAX_WEIGHT_BITS:
            raise QuantizationError(
                f"Lava Dense weights hold at most {LAVA_MAX_WEIGHT_BITS} mantissa "
                f"bits; these have {b}. Quantise with mantissa_bits<=8.")
        is_mixed = int(self.sign_mode == "mixed")
        shift = LAVA_MAX_WEIGHT_BITS - b + is_mixed
        weights = (self.mantissa << shift).astype(np.int32)
        return LavaDenseWeights(
            weights=weights,
            weight_exp=int(self.exp + int(state_frac_bits) - shift),
            num_weight_bits=b,
            sign_mode=self.sign_mode,
        )


def _fits(W: np.ndarray, e: int, lo: int, hi: int) -> bool:
    scaled = np.ldexp(W, -e)
    return bool(scaled.min() >= lo and scaled.max() <= hi)


def choose_weight_exp(W, mantissa_bits: int = 8, sign_mode: str = "mixed") -> int:
    """Smallest integer ``e`` with every ``W / 2**e`` inside the mantissa range.

    This is the finest LSB that needs no saturation for any rounding mode (a
    value inside ``[lo, hi]`` rounds inside it). An all-zero ``W`` gives 0.
    Lava's ``_determine_weight_exp`` uses the same criterion for integer input
    (largest power-of-two scale with ``max * scale <= 127`` and
    ``min * scale >= -128`` in mixed mode).
    """
    arr = _as_real_array("W", W)
    lo, hi = mantissa_range(mantissa_bits, sign_mode)
    if arr.size == 0:
        return 0
    pos = float(arr.max()) if arr.max() > 0 else 0.0
    neg = float(-arr.min()) if arr.min() < 0 else 0.0
    guesses = []
    # first guess from binary exponents (no division: safe for subnormals);
    # value = f * 2**k with f in [0.5, 1) needs 2**e >= value / limit
    if pos > 0:
        if hi == 0:
            raise QuantizationError("positive weights cannot be stored in "
                                    f"{mantissa_bits}-bit sign_mode={sign_mode!r} "
                                    f"mantissas (range [{lo}, {hi}])")
        guesses.append(int(np.frexp(pos)[1]) - int(hi).bit_length() + 1)
    if neg > 0:
        if lo == 0:
            raise QuantizationError("negative weights cannot be stored in "
                                    f"{mantissa_bits}-bit sign_mode={sign_mode!r} "
                                    f"mantissas (range [{lo}, {hi}])")
        guesses.append(int(np.frexp(neg)[1]) - int(-lo).bit_length() + 1)
    if not guesses:
        return 0
    e = max(guesses)
    # exact correction of the guess (ldexp scales by powers of two exactly)
    while not _fits(arr, e, lo, hi):
        e += 1
    while _fits(arr, e - 1, lo, hi):
        e -= 1
    return e


def quantize_weights(
    W,
    mantissa_bits: int = 8,
    sign_mode: str = "mixed",
    *,
    exp: int | None = None,
    min_exp: int | None = None,
    max_exp: int | None = None,
    rounding: str = "nearest",
    seed: int | None = None,
) -> QuantizedWeights:
    """Quantise a real weight array to shared-exponent integer mantissas.

    Parameters
    ----------
    W : array_like
        Any shape (usually ``(n_post, n_pre)``), real, finite: weights in model
        units.
    mantissa_bits : int, default 8
        Bits per mantissa, including the sign bit in ``"mixed"`` mode
        (Lava's ``num_weight_bits``; Loihi 2 allows up to 8).
    sign_mode : str, default "mixed"
        ``"mixed"`` | ``"excitatory"`` | ``"inhibitory"``.
        ``"excitatory"`` rejects any negative weight and ``"inhibitory"`` any
        positive one with a :class:`QuantizationError` (the hardware cannot
        store them; choose ``"mixed"`` or split the projection).
    exp : int, optional
        Force this shared exponent (values beyond range then saturate).
        Default: :func:`choose_weight_exp`, the finest exponent with no
        saturation, then clipped into ``[min_exp, max_exp]``.
    min_exp, max_exp : int, optional
        Bounds on the chosen exponent (e.g. a weight-exponent register range
        translated to these units). Clipping to ``max_exp`` saturates the
        largest weights; clipping to ``min_exp`` only loses resolution. An
        explicit ``exp`` outside them is an error.
    rounding : str, default "nearest"
        ``"nearest"`` (ties to even) | ``"truncate"`` | ``"stochastic"``; see the
        module docstring.
    seed : int, optional
        Seed for ``rounding="stochastic"`` (required there, unused elsewhere).

    Returns
    -------
    QuantizedWeights
        ``mantissa`` (int64, shape of ``W``), ``exp``, and the error report
        (``max_abs``, ``rms``, ``rel_fro``, ``n_saturated``, ``lsb``). With
        ``rounding="nearest"`` and no saturation, ``error.max_abs <= lsb / 2``.

    Raises
    ------
    QuantizationError
        For ``W`` that is not real and finite, an unknown ``sign_mode`` or
        ``rounding``, a bad ``mantissa_bits``, weights of the wrong sign for the
        sign mode, ``min_exp > max_exp``, an ``exp`` that is not an int or lies
        outside the bounds, and stochastic rounding without a ``seed``.
    """
    arr = _as_real_array("W", W)
    _check_choice("sign_mode", sign_mode, SIGN_MODES)
    _check_choice("rounding", rounding, ROUNDINGS)
    lo, hi = mantissa_range(mantissa_bits, sign_mode)
    if min_exp is not None and max_exp is not None and min_exp > max_exp:
        raise QuantizationError(f"min_exp={min_exp} is larger than max_exp={max_exp}")

    if arr.size:
        if sign_mode == "excitatory" and arr.min() < 0:
            raise QuantizationError(
                f"sign_mode='excitatory' stores only weights >= 0, but W has "
                f"{int(np.sum(arr < 0))} negative entries (min {arr.min():g}); "
                f"use sign_mode='mixed' or split the projection by sign")
        if sign_mode == "inhibitory" and arr.max() > 0:
            raise QuantizationError(
                f"sign_mode='inhibitory' stores only weights <= 0, but W has "
                f"{int(np.sum(arr > 0))} positive entries (max {arr.max():g}); "
                f"use sign_mode='mixed' or split the projection by sign")

    if exp is not None:
        if isinstance(exp, bool) or not isinstance(exp, (int, np.integer)):
            raise QuantizationError(f"exp must be an int, got {exp!r}")
        e = int(exp)
        if (min_exp is not None and e < min_exp) or (max_exp is not None and e > max_exp):
            raise QuantizationError(f"exp={e} is outside [min_exp, max_exp] = "
                                    f"[{min_exp}, {max_exp}]")
    else:
        e = choose_weight_exp(arr, mantissa_bits, sign_mode)
        if max_exp is not None:
            e = min(e, int(max_exp))
        if min_exp is not None:
            e = max(e, int(min_exp))

    scaled = np.ldexp(arr, -e)
    rounded = _round(scaled, rounding, seed,
                     toward_zero_for_negative=(sign_mode == "inhibitory"))
    n_sat = int(np.sum((rounded < lo) | (rounded > hi)))
    mantissa = np.clip(rounded, lo, hi).astype(np.int64)
    deq = np.ldexp(mantissa.astype(np.float64), e)
    report = error_report(arr, deq, lsb=float(np.ldexp(1.0, e)), n_saturated=n_sat)
    return QuantizedWeights(mantissa, e, int(mantissa_bits), sign_mode, rounding, report)


# --------------------------------------------------------------------------
# state
# --------------------------------------------------------------------------
def clamp_to_bits(q, bits: int, *, signed: bool = True,
                  overflow: str = "saturate") -> tuple[np.ndarray, int]:
    """Bring integers into a ``bits``-wide register the way hardware does.

    Parameters
    ----------
    q : array_like
        Integers (any shape).
    bits : int
        Register width.
    signed : bool, default True
        Two's-complement signed (``[-2**(b-1), 2**(b-1)-1]``) or unsigned
        (``[0, 2**b-1]``).
    overflow : str, default "saturate"
        ``"saturate"``: clamp to the range (two's-complement clamp);
        ``"saturate_symmetric"``: clamp to ``[-(2**(b-1)-1), 2**(b-1)-1]``,
        the voltage clamp of Lava's fixed-point LIF
        (``lava/proc/lif/models.py``: ``np.clip(v, -2**23+1, 2**23-1)``);
        ``"wrap"``: modulo ``2**b`` into the range (two's-complement
        overflow; Lava's LIF current ``u`` wraps, see docs/targets/loihi2.md
        for its boundary convention).

    Returns
    -------
    q_clamped : numpy.ndarray
        int64, the shape of ``q``.
    n_out_of_range : int
        How many entries were outside the range.

    Raises
    ------
    QuantizationError
        For non-integer values, an unknown ``overflow``, a bad ``bits``, and
        ``"saturate_symmetric"`` with ``signed=False``.
    """
    _check_choice("overflow", overflow, OVERFLOWS)
    lo, hi = integer_range(bits, signed)
    arr = np.asarray(q)
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        if arr.size and not np.all(np.mod(arr, 1) == 0):
            raise QuantizationError("clamp_to_bits expects integer values")
    arr = arr.astype(np.int64)
    if overflow == "saturate_symmetric":
        if not signed:
            raise QuantizationError("overflow='saturate_symmetric' needs signed=True")
        lo = -hi
    n_out = int(np.sum((arr < lo) | (arr > hi)))
    if overflow == "wrap":
        span = np.int64(1) << np.int64(bits)
        out = ((arr - lo) % span) + lo
    else:
        out = np.clip(arr, lo, hi)
    return out.astype(np.int64), n_out


def quantize_state(
    x,
    bits: int = 24,
    *,
    frac_bits: int,
    signed: bool = True,
    rounding: str = "nearest",
    overflow: str = "saturate",
    seed: int | None = None,
) -> np.ndarray:
    """Quantise a real state array to ``bits``-wide fixed point.

    ``q = clamp(round(x * 2**frac_bits))`` so that ``x ≈ q * 2**-frac_bits``
    (:func:`dequantize` ``(q, frac_bits)``).

    Parameters
    ----------
    x : array_like
        Any shape, real and finite (model units).
    bits : int, default 24
        Register width (24 for Lava's fixed-point LIF ``u``/``v``).
    frac_bits : int
        Fractional bits (required; may be negative or exceed ``bits``).
    signed : bool, default True
        Signed two's complement (default) or unsigned (e.g. a 7-bit trace).
    rounding : str, default "nearest"
        ``"nearest"`` (ties to even) | ``"truncate"`` (floor, as an arithmetic
        right shift) | ``"stochastic"`` (needs ``seed``).
    overflow : str, default "saturate"
        ``"saturate"`` (two's-complement clamp) | ``"saturate_symmetric"`` |
        ``"wrap"``; see :func:`clamp_to_bits`.
    seed : int, optional
        Seed for ``rounding="stochastic"``.

    Returns
    -------
    numpy.ndarray
        int64, shape of ``x``.

    Raises
    ------
    QuantizationError
        For ``x`` that is not real and finite, an unknown ``rounding`` or
        ``overflow``, a ``frac_bits`` that is not an int, a bad ``bits``,
        stochastic rounding without a ``seed``, and a value too large to wrap
        exactly.
    """
    arr = _as_real_array("x", x)
    _check_choice("rounding", rounding, ROUNDINGS)
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, (int, np.integer)):
        raise QuantizationError(f"frac_bits must be an int, got {frac_bits!r}")
    lo, hi = integer_range(bits, signed)
    scaled = np.ldexp(arr, int(frac_bits))
    rounded = _round(scaled, rounding, seed)
    # keep the float in a range int64 can hold before the integer clamp/wrap
    if overflow != "wrap":
        rounded = np.clip(rounded, lo - 1, hi + 1)
    elif rounded.size and np.max(np.abs(rounded)) >= 2.0 ** 62:
        raise QuantizationError("value too large to wrap exactly")
    q, _ = clamp_to_bits(rounded.astype(np.int64), bits, signed=signed, overflow=overflow)
    return q


def dequantize(q, frac_bits: int | None = None) -> np.ndarray:
    """Back to real values (float64, shape of ``q``).

    ``dequantize(q, frac_bits)`` -> ``q * 2**-frac_bits`` for a state from
    :func:`quantize_state`; ``dequantize(qw)`` for a :class:`QuantizedWeights`
    -> ``qw.mantissa * 2**qw.exp``.

    Parameters
    ----------
    q : array_like or QuantizedWeights
        Integer state, or quantised weights.
    frac_bits : int, optional
        The state's fractional bits: required for an integer array, not allowed
        with :class:`QuantizedWeights`.

    Returns
    -------
    numpy.ndarray
        float64, shape of ``q``.

    Raises
    ------
    QuantizationError
        For ``frac_bits`` missing with an array, or given with
        :class:`QuantizedWeights`.
    """
    if isinstance(q, QuantizedWeights):
        if frac_bits is not None:
            raise QuantizationError("frac_bits does not apply to QuantizedWeights")
        return q.dequantize()
    if frac_bits is None:
        raise QuantizationError("dequantize(q, frac_bits): frac_bits is required "
                                "for an integer array")
    return np.ldexp(np.asarray(q, dtype=np.float64), -int(frac_bits))


def state_error(x, q, frac_bits: int, n_saturated: int | None = None) -> ErrorReport:
    """:class:`ErrorReport` of a quantised state ``q`` against the original ``x``.

    ``n_saturated`` defaults to the number of entries whose error is at least
    one LSB: no rounding mode errs that much, so those were clamped or wrapped.
    """
    x = _as_real_array("x", x)
    deq = dequantize(q, frac_bits)
    lsb = float(np.ldexp(1.0, -int(frac_bits)))
    if n_saturated is None:
        n_saturated = int(np.sum(np.abs(x - deq) >= lsb))
    return error_report(x, deq, lsb=lsb, n_saturated=n_saturated)
