"""The small interface every hardware target offers, and the target registry.

A *target* answers the questions a compiler or a fixed-point backend asks of a
chip: what is it called, what are its published limits (``spec``), how are
weights stored (``weight_format``), how wide are neuron state registers
(``state_bits``) and graded spike payloads (``message_bits``). ``None`` means
"no limit: floating point" (the ``cpu`` target).

    >>> from hardware_targets import get_target
    >>> get_target("loihi2").weight_format("mixed").mantissa_range
    (-128, 127)

Backends reach chip numbers only through this interface (the Lava fixed-point
backend asks ``hardware_targets`` for precisions; ``docs/semantics.md``, Numbers).
"""
from __future__ import annotations

import abc
import dataclasses
import importlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from hardware_targets.quantize import SIGN_MODES, mantissa_range


class UnknownTargetError(ValueError):
    """A target name that is not registered; the message lists valid names."""


@dataclass(frozen=True)
class WeightFormat:
    """How a target stores one projection's weights.

    Attributes
    ----------
    mantissa_bits : int or None
        Bits per stored weight mantissa including the sign bit in ``"mixed"``
        mode, or ``None`` for floating point (no quantisation).
    sign_mode : str
        ``"mixed"`` | ``"excitatory"`` | ``"inhibitory"``.
    shared_exponent : bool
        Whether a power-of-two exponent shared by the whole projection scales
        the mantissas (``W ≈ mantissa * 2**exp``; see
        :mod:`hardware_targets.quantize`).
    weight_exp_range : tuple of int or None
        Inclusive range of the hardware's shared-exponent register, in the
        target's own convention (for Loihi 2: Lava's ``weight_exp``), or
        ``None`` when unconstrained or not public.

    Raises
    ------
    ValueError
        For an unknown ``sign_mode``.
    QuantizationError
        For a ``mantissa_bits`` that is not an int between 1 and
        :data:`~hardware_targets.quantize.MAX_BITS`.
    """

    mantissa_bits: int | None
    sign_mode: str = "mixed"
    shared_exponent: bool = True
    weight_exp_range: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.sign_mode not in SIGN_MODES:
            raise ValueError(f"unknown sign_mode {self.sign_mode!r}; valid: "
                             + ", ".join(repr(s) for s in SIGN_MODES))
        if self.mantissa_bits is not None:
            mantissa_range(self.mantissa_bits, self.sign_mode)  # validates

    @property
    def is_float(self) -> bool:
        """True when weights are stored as floating point (no limits)."""
        return self.mantissa_bits is None

    @property
    def mantissa_range(self) -> tuple[int, int] | None:
        """Inclusive integer range of a mantissa, or ``None`` for float."""
        if self.mantissa_bits is None:
            return None
        return mantissa_range(self.mantissa_bits, self.sign_mode)


class HardwareTarget(abc.ABC):
    """What a chip can hold and compute, as the compiler needs to know it."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Registry name, e.g. ``"loihi2"``."""

    @property
    @abc.abstractmethod
    def spec(self) -> Any:
        """The target's frozen spec dataclass (published numbers, parameters)."""

    @abc.abstractmethod
    def weight_format(self, sign_mode: str = "mixed") -> WeightFormat:
        """How weights of a projection with this sign mode are stored.

        Parameters
        ----------
        sign_mode : str, default "mixed"
            ``"mixed"`` | ``"excitatory"`` | ``"inhibitory"``.

        Returns
        -------
        WeightFormat
            The storage format.
        """

    @property
    @abc.abstractmethod
    def state_bits(self) -> int | None:
        """Width of a neuron state register (bits), ``None`` for float."""

    @property
    @abc.abstractmethod
    def message_bits(self) -> int | None:
        """Width of a graded spike payload (bits), ``None`` for float."""

    @property
    def is_fixed_point(self) -> bool:
        """True when states are integers of ``state_bits`` bits."""
        return self.state_bits is not None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


# name -> "module:class"; imported on demand so that base.py imports no target.
_REGISTRY: Mapping[str, str] = MappingProxyType({
    "cpu": "hardware_targets.cpu:CPUTarget",
    "loihi2": "hardware_targets.loihi2:Loihi2Target",
})


def available_targets() -> tuple[str, ...]:
    """Names accepted by :func:`get_target`, sorted.

    Returns
    -------
    tuple of str
        The registered names.
    """
    return tuple(sorted(_REGISTRY))


def get_target(name: str, **spec_overrides: Any) -> HardwareTarget:
    """The hardware target registered as ``name`` (case-insensitive).

    Parameters
    ----------
    name : str
        The registry name, e.g. ``"loihi2"`` (:func:`available_targets`).
    **spec_overrides
        Replace fields of the target's default spec, for the numbers that are
        parameters rather than published facts, e.g.
        ``get_target("loihi2", message_bits=16)``.

    Returns
    -------
    HardwareTarget
        The target.

    Raises
    ------
    UnknownTargetError
        For an unregistered name; the message lists the valid names.
    TypeError
        For a non-string name, or an override the spec does not have.
    """
    if not isinstance(name, str):
        raise TypeError(f"target name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in _REGISTRY:
        valid = ", ".join(repr(n) for n in available_targets())
        raise UnknownTargetError(
            f"unknown hardware target {name!r}; valid names: {valid}")
    module_name, cls_name = _REGISTRY[key].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    if not spec_overrides:
        return cls()
    default_spec = cls().spec
    fields = {f.name for f in dataclasses.fields(default_spec)}
    unknown = sorted(set(spec_overrides) - fields)
    if unknown:
        raise TypeError(
            f"target {key!r} has no spec field(s) {', '.join(unknown)}; "
            f"valid fields: {', '.join(sorted(fields)) or '(none)'}")
    return cls(dataclasses.replace(default_spec, **spec_overrides))
