"""Quantise a whole circuit's weights for a target: the interface the Lava
``fixed_pt`` backend asks for precisions.

    >>> from hardware_targets.circuit_quant import quantize_circuit
    >>> cq = quantize_circuit(circuit, weights, target="loihi2")   # doctest: +SKIP
    >>> p = cq["W1"]                       # one ProjectionQuant
    >>> p.mantissa, p.exp                  # W1 ≈ mantissa * 2**exp
    >>> p.lava(state_frac_bits=12)         # Lava Dense parameters
    >>> print(cq.format())                 # the error table

Per projection (in circuit order) the matrix quantised is the *effective*
matrix the projection applies, ``port += M @ src``: its own weights times
``Projection.scale``; a tied projection's matrix is ``scale * fn(W_to)ᵀ``
(``tied=True`` in the result: it has no storage of its own in the IR, but a
chip still stores it at its target).

Format (:mod:`hardware_targets.quantize`): ``M ≈ mantissa * 2**exp`` with
``mantissa_bits``-bit mantissas (8 on Loihi 2, sign included in ``"mixed"``)
and one shared exponent per projection, the finest exponent at which no
mantissa saturates (clipped into the target's ``weight_exp_range`` when that
is known; Loihi 2's is not public, so by default no clipping happens and
``n_saturated`` is 0). Rounding is to nearest, ties to even, unless asked
otherwise; saturation clamps to the mantissa range.

An all-zero matrix (a bias initialised to zero) carries no scale: it gets
``zero_exp`` (default −7: with 8-bit mixed mantissas the LSB is ``2**-7``
and the matrix can learn values in ``[-1, 1)``). Its quantisation is exact
whatever the exponent.

The ``cpu`` target is floating point: every projection is returned with
``mantissa=None``, ``exp=None`` and zero error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hardware_targets.base import get_target
from hardware_targets.mapping import format_table
from hardware_targets.quantize import (
    ErrorReport,
    LavaDenseWeights,
    QuantizationError,
    determine_sign_mode,
    quantize_weights,
)

__all__ = ["ProjectionQuant", "CircuitQuantization", "quantize_circuit", "effective_matrix",
           "DEFAULT_ZERO_EXP"]

#: exponent given to an all-zero matrix (LSB 2**-7: 8-bit mixed mantissas span [-1, 1))
DEFAULT_ZERO_EXP = -7


#: thresholds above which a projection's quantisation is reported as a loss
LOSS_REL_ERROR = 0.05
LOSS_ZEROED = 0.05


@dataclass(frozen=True, eq=False)
class ProjectionQuant:
    """One projection's fixed-point parameters and its quantisation error.

    ``M ≈ mantissa * 2**exp``.

    Attributes
    ----------
    projection : str
        The projection's name.
    matrix_shape : tuple of int
        ``(n_target, n_source)``.
    mantissa : numpy.ndarray or None
        int64 array of that shape, or ``None`` on a float target.
    exp : int or None
        Shared exponent (units of the weights), ``None`` on a float target.
    mantissa_bits : int or None
        The mantissa width (``None`` on a float target).
    sign_mode : str
        The sign mode of the mantissas.
    rounding : str
        The rounding mode (``"none"`` on a float target).
    saturation : str
        ``"saturate"`` (mantissas clamp to their range; ``"none"`` on a float
        target).
    error : ErrorReport
        :class:`~hardware_targets.quantize.ErrorReport` of the dequantised
        matrix against the effective float matrix.
    plastic, tied : bool
        Copied from the IR.
    """

    projection: str
    matrix_shape: tuple[int, int]
    mantissa: np.ndarray | None
    exp: int | None
    mantissa_bits: int | None
    sign_mode: str
    rounding: str
    saturation: str
    error: ErrorReport
    plastic: bool = False
    tied: bool = False

    @property
    def lsb(self) -> float | None:
        """Value of one mantissa step, ``2**exp`` (weight units), None on float."""
        return None if self.exp is None else float(np.ldexp(1.0, self.exp))

    @property
    def register_shift(self) -> int | None:
        """``8 - mantissa_bits + is_mixed``: how far Lava's 8-bit weight register
        (``Dense.weights``, range [-256, 255]) shifts the mantissa left."""
        if self.mantissa_bits is None:
            return None
        return 8 - self.mantissa_bits + int(self.sign_mode == "mixed")

    @property
    def register_lsb(self) -> float | None:
        """Weight units of one step of Lava's weight register (what the learning
        engine's ``w`` factor counts and changes): ``2**(exp - register_shift)``."""
        if self.exp is None:
            return None
        return float(np.ldexp(1.0, self.exp - self.register_shift))

    def dequantize(self) -> np.ndarray | None:
        """``mantissa * 2**exp`` (float64), or None on a float target.

        Returns
        -------
        numpy.ndarray or None
            The dequantised matrix ``(n_target, n_source)``.
        """
        if self.mantissa is None:
            return None
        return np.ldexp(self.mantissa.astype(np.float64), self.exp)

    def lava(self, state_frac_bits: int = 0) -> LavaDenseWeights:
        """Lava ``Dense`` fixed-point parameters of this projection.

        ``weights``, ``weight_exp``, ``num_weight_bits`` and ``sign_mode``, such
        that ``weights * 2**weight_exp == M_q * 2**state_frac_bits`` (see
        :meth:`hardware_targets.quantize.QuantizedWeights.to_lava_dense`).

        Parameters
        ----------
        state_frac_bits : int, default 0
            Fractional bits of the integer the synaptic input is added to.

        Returns
        -------
        LavaDenseWeights
            The ``Dense`` parameters.

        Raises
        ------
        QuantizationError
            For a projection quantised for a floating-point target.
        """
        if self.mantissa is None:
            raise QuantizationError(f"projection {self.projection!r} was quantised for a "
                                    "floating-point target: no Lava fixed-point parameters")
        shift = self.register_shift
        return LavaDenseWeights(weights=(self.mantissa << shift).astype(np.int32),
                                weight_exp=int(self.exp + int(state_frac_bits) - shift),
                                num_weight_bits=int(self.mantissa_bits),
                                sign_mode=self.sign_mode)

    def as_dict(self) -> dict:
        """JSON-able summary (no arrays).

        Returns
        -------
        dict
            The format (shape, bits, exponent, LSB, sign mode, rounding,
            saturation, plastic, tied) and the error (max, rms, relative, saturated
            count, zeroed fraction).
        """
        e = self.error
        return {"projection": self.projection, "shape": list(self.matrix_shape),
                "mantissa_bits": self.mantissa_bits, "exp": self.exp, "lsb": self.lsb,
                "sign_mode": self.sign_mode, "rounding": self.rounding,
                "saturation": self.saturation, "plastic": self.plastic, "tied": self.tied,
                "max_abs_error": e.max_abs, "rms_error": e.rms, "rel_error": e.rel_fro,
                "n_saturated": e.n_saturated, "zeroed_fraction": e.zeroed_fraction}


@dataclass(frozen=True, eq=False)
class CircuitQuantization:
    """``{projection name: ProjectionQuant}`` in circuit order, for one target.

    Indexing by name gives a :class:`ProjectionQuant` (a ``KeyError`` lists the
    names); iterating gives them in circuit order.

    Attributes
    ----------
    target : str
        The target's name.
    projections : dict of str to ProjectionQuant
        The projections, in circuit order.
    """

    target: str
    projections: dict[str, ProjectionQuant] = field(default_factory=dict)

    def __getitem__(self, name: str) -> ProjectionQuant:
        try:
            return self.projections[name]
        except KeyError:
            raise KeyError(f"no quantised projection {name!r}; have "
                           f"{list(self.projections)}") from None

    def __iter__(self):
        return iter(self.projections.values())

    def __len__(self) -> int:
        return len(self.projections)

    def report(self) -> list[dict]:
        """One JSON-able row per projection (:meth:`ProjectionQuant.as_dict`).

        Returns
        -------
        list of dict
            The rows, in circuit order.
        """
        return [p.as_dict() for p in self]

    def format(self) -> str:
        """Plain-text table: format and error of every projection.

        Returns
        -------
        str
            The table.
        """
        rows = [("projection", "shape", "bits", "exp", "sign", "rel err", "max |err|", "sat",
                 "zeroed")]
        for p in self:
            rows.append((p.projection + (" (tied)" if p.tied else ""),
                         "x".join(map(str, p.matrix_shape)),
                         "float" if p.mantissa_bits is None else str(p.mantissa_bits),
                         "-" if p.exp is None else str(p.exp), p.sign_mode,
                         f"{p.error.rel_fro:.2e}", f"{p.error.max_abs:.2e}",
                         str(p.error.n_saturated), f"{100 * p.error.zeroed_fraction:.1f}%"))
        return format_table(rows)

    def losses(self, rel_error: float = LOSS_REL_ERROR,
               zeroed: float = LOSS_ZEROED) -> list[str]:
        """One line per projection the format hurts.

        A projection is hurt by saturated mantissas, a relative error above
        ``rel_error``, or more than ``zeroed`` of its nonzero weights quantised to 0
        (one large weight setting the shared exponent). Float projections are
        skipped.

        Parameters
        ----------
        rel_error : float, default 0.05
            The relative error above which a projection is reported.
        zeroed : float, default 0.05
            The fraction of nonzero weights quantised to 0 above which a
            projection is reported.

        Returns
        -------
        list of str
            One line per hurt projection, naming it and why.
        """
        out = []
        for p in self:
            e = p.error
            if p.mantissa_bits is None:
                continue
            why = []
            if e.n_saturated:
                why.append(f"{e.n_saturated} weight(s) saturate the {p.mantissa_bits}-bit "
                           "mantissa")
            if e.rel_fro > rel_error:
                why.append(f"relative error {100 * e.rel_fro:.1f} %")
            if e.zeroed_fraction > zeroed:
                top = float(np.abs(p.mantissa).max()) * 2.0 ** p.exp
                why.append(f"{100 * e.zeroed_fraction:.0f} % of its nonzero weights become 0: "
                           f"the largest, {top:.3g}, sets the shared exponent and one step is "
                           f"{e.lsb:.3g}")
            if why:
                out.append(f"projection {p.projection!r}: " + "; ".join(why))
        return out


def state_losses(name: str, x: np.ndarray, state_bits: int, frac_bits: int) -> list[str]:
    """A line if values of ``x`` fall outside the fixed-point state range
    ``±2**(state_bits - 1 - frac_bits)`` (they saturate), naming the data."""
    x = np.asarray(x, dtype=np.float64)
    top = 2.0 ** (state_bits - 1 - frac_bits)
    out = int(np.count_nonzero((x >= top) | (x < -top)))
    if not out:
        return []
    return [f"{name}: {out} of {x.size} values ({100 * out / x.size:.2g} %) lie outside the "
            f"{state_bits}-bit state range [-{top:g}, {top:g}) of {frac_bits} fractional bits "
            f"(data range [{x.min():.3g}, {x.max():.3g}]) and saturate; scale the data or "
            "lower frac_bits"]


def effective_matrix(circuit, weights: dict, proj) -> np.ndarray:
    """``circuit.effective_matrix(weights, proj)`` (:meth:`neuro_pc.ir.Circuit.effective_matrix`),
    a missing matrix raised as :class:`QuantizationError`."""
    from neuro_pc.ir import CircuitError

    try:
        return circuit.effective_matrix(weights, proj)
    except CircuitError as exc:
        raise QuantizationError(str(exc)) from None


def quantize_circuit(circuit, weights: dict, target="loihi2", *, mantissa_bits: int | None = None,
                     sign_mode: str = "mixed", rounding: str = "nearest",
                     zero_exp: int = DEFAULT_ZERO_EXP, seed: int | None = None,
                     include_tied: bool = True) -> CircuitQuantization:
    """Fixed-point parameters and quantisation error of every projection.

    Parameters
    ----------
    circuit : neuro_pc.ir.Circuit
        The circuit.
    weights : dict
        ``{projection: (n_target, n_source) array}`` (trained or
        ``circuit.init_weights(seed)``); tied projections need their source's.
    target : str or HardwareTarget, default "loihi2"
        A target name or :class:`~hardware_targets.base.HardwareTarget`.
    mantissa_bits : int, optional
        Default the target's maximum (8 on Loihi 2).
    sign_mode : str, default "mixed"
        ``"mixed"`` (a plastic projection must be mixed, its weights may change
        sign) or ``"auto"`` (fixed projections get the narrowest mode that holds
        them, by Lava's rule; plastic ones stay mixed).
    rounding : str, default "nearest"
        ``"nearest"`` | ``"truncate"`` | ``"stochastic"`` (needs ``seed``).
    zero_exp : int, default -7
        Exponent of an all-zero matrix (see the module docstring).
    seed : int, optional
        Seed for ``rounding="stochastic"``.
    include_tied : bool, default True
        Also quantise tied projections (their effective matrix).

    Returns
    -------
    CircuitQuantization
        Every projection's :class:`ProjectionQuant`, in circuit order.

    Raises
    ------
    QuantizationError
        For a missing weight matrix, one of the wrong shape, and weights the
        format cannot hold (:func:`~hardware_targets.quantize.quantize_weights`).
    """
    tgt = get_target(target) if isinstance(target, str) else target
    out: dict[str, ProjectionQuant] = {}
    sizes = {p.name: p.size for p in circuit.populations}
    for proj in circuit.projections:
        if proj.tied is not None and not include_tied:
            continue
        m = effective_matrix(circuit, weights, proj)
        shape = (sizes[proj.target], sizes[proj.source])
        if m.shape != shape:
            raise QuantizationError(f"weights of projection {proj.name!r} have shape {m.shape}, "
                                    f"expected {shape} (n_target, n_source)")
        mode = sign_mode
        if sign_mode == "auto":
            mode = "mixed" if proj.rule is not None else determine_sign_mode(m)
        wf = tgt.weight_format(mode) if mantissa_bits is None else \
            tgt.weight_format(mode, mantissa_bits=mantissa_bits)
        if wf.is_float:
            zero = ErrorReport(0.0, 0.0, 0.0, 0, 0.0)
            out[proj.name] = ProjectionQuant(proj.name, shape, None, None, None, mode, "none",
                                             "none", zero, proj.rule is not None,
                                             proj.tied is not None)
            continue
        lo_hi = wf.weight_exp_range
        kw = {}
        if not np.any(m):
            kw["exp"] = int(zero_exp)
        elif lo_hi is not None:
            # the range is in Lava's weight_exp convention (state_frac_bits=0):
            # weight_exp = exp - register_shift
            shift = 8 - wf.mantissa_bits + int(mode == "mixed")
            kw.update(min_exp=lo_hi[0] + shift, max_exp=lo_hi[1] + shift)
        q = quantize_weights(m, wf.mantissa_bits, mode, rounding=rounding, seed=seed, **kw)
        out[proj.name] = ProjectionQuant(proj.name, shape, q.mantissa, q.exp, q.mantissa_bits,
                                         mode, rounding, "saturate", q.error,
                                         proj.rule is not None, proj.tied is not None)
    return CircuitQuantization(target=tgt.name, projections=out)

