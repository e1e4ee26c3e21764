"""The ``cpu`` target: floating point, no resource limits.

The same interface as a chip target, so code that asks a target for
precisions runs unchanged on the reference (NumPy) and float backends:
``weight_format(...).is_float`` is True and ``state_bits``/``message_bits``
are ``None``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hardware_targets.base import HardwareTarget, WeightFormat
from hardware_targets.quantize import SIGN_MODES

__all__ = ["CPUSpec", "CPUTarget"]


@dataclass(frozen=True)
class CPUSpec:
    """No limits: float64 weights and state, unbounded sizes (``None``)."""

    dtype: str = field(default="float64", metadata={"source": "NumPy default float", "public": True})
    max_neurons_per_core: int | None = field(default=None, metadata={"source": "no limit", "public": True})
    neuro_cores_per_chip: int | None = field(default=None, metadata={"source": "no limit", "public": True})


class CPUTarget(HardwareTarget):
    """Floating-point target with no limits."""

    def __init__(self, spec: CPUSpec | None = None) -> None:
        if spec is None:
            spec = CPUSpec()
        if not isinstance(spec, CPUSpec):
            raise TypeError(f"CPUTarget needs a CPUSpec, got {type(spec).__name__}")
        self._spec = spec

    @property
    def name(self) -> str:
        return "cpu"

    @property
    def spec(self) -> CPUSpec:
        return self._spec

    def weight_format(self, sign_mode: str = "mixed",
                      mantissa_bits: int | None = None) -> WeightFormat:
        """Float weights (``mantissa_bits=None``); any sign mode is accepted.

        ``mantissa_bits`` is accepted for interface symmetry and must be None.
        """
        if sign_mode not in SIGN_MODES:
            raise ValueError(f"unknown sign_mode {sign_mode!r}; valid: "
                             + ", ".join(repr(s) for s in SIGN_MODES))
        if mantissa_bits is not None:
            raise ValueError("the cpu target stores float weights; mantissa_bits must be None")
        return WeightFormat(mantissa_bits=None, sign_mode=sign_mode,
                            shared_exponent=False, weight_exp_range=None)

    @property
    def state_bits(self) -> None:
        return None

    @property
    def message_bits(self) -> None:
        return None
