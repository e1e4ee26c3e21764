"""Intel Loihi 2 as a hardware target: :class:`Loihi2Spec` and :class:`Loihi2Target`.

The numbers and their sources are in :mod:`hardware_targets.loihi2.spec` and
docs/targets/loihi2.md.
"""
from __future__ import annotations

from hardware_targets.base import HardwareTarget, WeightFormat
from hardware_targets.loihi2.spec import (
    LavaLifFixedPoint,
    Loihi2LearningEngine,
    Loihi2Spec,
)

__all__ = ["Loihi2Target", "Loihi2Spec", "Loihi2LearningEngine", "LavaLifFixedPoint"]


class Loihi2Target(HardwareTarget):
    """Loihi 2: 8-bit shared-exponent weights, 24-bit state, graded spikes.

    ``spec`` defaults to :class:`Loihi2Spec` (); pass another to change the
    parameters that are not public, e.g. ``Loihi2Target(Loihi2Spec(message_bits=16))``
    or ``get_target("loihi2", message_bits=16)``.
    """

    def __init__(self, spec: Loihi2Spec | None = None) -> None:
        if spec is None:
            spec = Loihi2Spec()
        if not isinstance(spec, Loihi2Spec):
            raise TypeError(f"Loihi2Target needs a Loihi2Spec, got {type(spec).__name__}")
        self._spec = spec

    @property
    def name(self) -> str:
        return "loihi2"

    @property
    def spec(self) -> Loihi2Spec:
        return self._spec

    def weight_format(self, sign_mode: str = "mixed",
                      mantissa_bits: int | None = None) -> WeightFormat:
        """Weights as ``mantissa * 2**exp``: up to 8 mantissa bits (sign
        included in ``"mixed"``), one exponent per projection."""
        bits = self._spec.max_weight_mantissa_bits if mantissa_bits is None else mantissa_bits
        if sign_mode not in self._spec.sign_modes:
            raise ValueError(f"Loihi 2 has no sign mode {sign_mode!r}; valid: "
                             + ", ".join(repr(s) for s in self._spec.sign_modes))
        if not isinstance(bits, int) or isinstance(bits, bool) or bits < 1:
            raise ValueError(f"mantissa_bits must be a positive int, got {bits!r}")
        if bits > self._spec.max_weight_mantissa_bits:
            raise ValueError(f"Loihi 2 weights have at most "
                             f"{self._spec.max_weight_mantissa_bits} mantissa bits, "
                             f"asked for {bits}")
        return WeightFormat(mantissa_bits=bits, sign_mode=sign_mode,
                            shared_exponent=True,
                            weight_exp_range=self._spec.weight_exp_range)

    @property
    def state_bits(self) -> int:
        return self._spec.state_bits

    @property
    def message_bits(self) -> int:
        return self._spec.message_bits
