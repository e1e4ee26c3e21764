"""Chip models: what a target can hold and compute, and array quantisation.

* :func:`get_target` / :func:`available_targets`: the registry (``"loihi2"``,
  ``"cpu"``) of :class:`HardwareTarget` objects;
* :mod:`hardware_targets.loihi2`: Loihi 2's published numbers, each with its
  source (docs/targets/loihi2.md);
* :mod:`hardware_targets.quantize`: NumPy-only weight and state quantisation.
"""
from hardware_targets.base import (
    HardwareTarget,
    UnknownTargetError,
    WeightFormat,
    available_targets,
    get_target,
)
from hardware_targets.quantize import (
    ErrorReport,
    LavaDenseWeights,
    QuantizationError,
    QuantizedWeights,
    clamp_to_bits,
    dequantize,
    determine_sign_mode,
    mantissa_range,
    quantize_state,
    quantize_weights,
)

__all__ = [
    "HardwareTarget",
    "UnknownTargetError",
    "WeightFormat",
    "available_targets",
    "get_target",
    "ErrorReport",
    "LavaDenseWeights",
    "QuantizationError",
    "QuantizedWeights",
    "clamp_to_bits",
    "dequantize",
    "determine_sign_mode",
    "mantissa_range",
    "quantize_state",
    "quantize_weights",
]
