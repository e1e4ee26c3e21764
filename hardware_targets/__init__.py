"""Chip models: what a target can hold and compute, and array quantisation.

* :func:`get_target` / :func:`available_targets`: the registry (``"loihi2"``,
  ``"cpu"``) of :class:`HardwareTarget` objects;
* :mod:`hardware_targets.loihi2`: Loihi 2's published numbers, each with its
  source (docs/targets/loihi2.md);
* :mod:`hardware_targets.quantize`: NumPy-only weight and state quantisation;
* :mod:`hardware_targets.circuit_quant`: :func:`quantize_circuit`, a whole
  circuit's fixed-point weight parameters and errors (what the Lava
  ``fixed_pt`` backend asks for);
* :mod:`hardware_targets.expressibility`: :func:`expressibility_report`, can
  the learning engine run each rule, as which Lava rule string, or why not;
* :mod:`hardware_targets.mapping`: :func:`map_circuit`, cores and chips;
* :mod:`hardware_targets.check`: :func:`check_report` / :func:`format_check`
  (``neuro-pc check``).

The last four read the circuit IR (``neuro_pc.ir``, ``neuro_pc.rules``) and
are imported on first use of their names, so that importing
``hardware_targets`` for precisions stays light.
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

_LAZY = {
    "quantize_circuit": "hardware_targets.circuit_quant",
    "CircuitQuantization": "hardware_targets.circuit_quant",
    "ProjectionQuant": "hardware_targets.circuit_quant",
    "expressibility_report": "hardware_targets.expressibility",
    "rule_expressibility": "hardware_targets.expressibility",
    "format_expressibility": "hardware_targets.expressibility",
    "RuleExpressibility": "hardware_targets.expressibility",
    "map_circuit": "hardware_targets.mapping",
    "ResourceMap": "hardware_targets.mapping",
    "MappingError": "hardware_targets.mapping",
    "PopulationTooLargeError": "hardware_targets.mapping",
    "check_report": "hardware_targets.check",
    "format_check": "hardware_targets.check",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hardware_targets' has no attribute {name!r}")


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
    *_LAZY,
]
