"""Loihi 2 as numbers: the published limits a mapper and a quantiser need.

Every field carries its source in ``dataclasses.field(metadata=...)``
(``Loihi2Spec.source(name)``, ``Loihi2Spec.is_public(name)``) and the same
table, with the code each number was read from, is docs/targets/loihi2.md.
Three kinds of source:

* **paper / brief**: Orchard et al. 2021 and Intel's Loihi 2 technology brief;
* **lava**: the open-source Lava 0.10.0 (``lava-nc``), whose ``fixed_pt``
  process models are Intel's public, bit-level statement of the precisions
  (paths below are relative to ``site-packages/lava/``);
* **parameter**: not public (or public only for Loihi 1). Such a field is a
  default you may override (``get_target("loihi2", field=value)``), and
  ``is_public(name)`` is False.

Loihi 2 neurons are microcode-programmable, so neuron state widths belong to
a neuron *model*, not to the chip: :class:`LavaLifFixedPoint` records those of
Lava's bit-accurate LIF, the model the Lava backend uses.

This module imports nothing from Lava; the tests compare against it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hardware_targets.quantize import SIGN_MODES, mantissa_range

ORCHARD_2021 = ("Orchard et al. 2021, 'Efficient Neuromorphic Signal Processing "
                "with Loihi 2', IEEE SiPS, arXiv:2111.03746")
INTEL_BRIEF = ("Intel Labs 2021, 'Taking Neuromorphic Computing to the Next Level "
               "with Loihi 2' (technology brief)")
LAVA = "lava-nc 0.10.0"


def _f(default: Any, source: str, public: bool = True):
    """A dataclass field with its source and public/parameter flag."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for defaults in a frozen spec")
    return field(default=default, metadata={"source": source, "public": public})


class _Sourced:
    """Mixin: look up the documented source of each field."""

    @classmethod
    def source(cls, name: str) -> str:
        """Where the number in field ``name`` comes from."""
        return cls._meta(name)["source"]

    @classmethod
    def is_public(cls, name: str) -> bool:
        """False when the field is a parameter (the number is not public)."""
        return bool(cls._meta(name)["public"])

    @classmethod
    def sources(cls) -> dict[str, str]:
        """``{field name: source}`` for every field, in declaration order."""
        return {f.name: f.metadata["source"] for f in dataclasses.fields(cls)}

    @classmethod
    def _meta(cls, name: str):
        for f in dataclasses.fields(cls):
            if f.name == name:
                return f.metadata
        valid = ", ".join(f.name for f in dataclasses.fields(cls))
        raise KeyError(f"{cls.__name__} has no field {name!r}; fields: {valid}")


@dataclass(frozen=True)
class LavaLifFixedPoint(_Sourced):
    """Widths of Lava's bit-accurate LIF (``proc/lif/models.py``,
    ``AbstractPyLifModelFixed`` and ``PyLifModelBitAcc``)."""

    # u, v: LavaPyType(np.int32, precision=24); self.uv_bitwidth = 24
    state_bits: int = _f(24, f"{LAVA} proc/lif/models.py: u, v precision=24; uv_bitwidth = 24")
    # u: "Overflows are handled by wrapping around" (np.where(u > 2**23, u - 2**24, ..))
    current_overflow: str = _f("wrap", f"{LAVA} proc/lif/models.py subthr_dynamics: u wraps modulo 2**24")
    # v: np.clip(v, -2**23 + 1, 2**23 - 1)
    voltage_overflow: str = _f("saturate_symmetric",
                               f"{LAVA} proc/lif/models.py subthr_dynamics: "
                               "v = clip(v, -(2**23-1), 2**23-1)")
    # du, dv: precision=12; decay_shift = 12, decay_unity = 4096
    decay_bits: int = _f(12, f"{LAVA} proc/lif/models.py: du, dv precision=12; decay_shift = 12")
    # "Threshold and incoming activation are MSB-aligned using 6-bits"
    activation_shift: int = _f(6, f"{LAVA} proc/lif/models.py: act_shift = 6")
    threshold_shift: int = _f(6, f"{LAVA} proc/lif/models.py: vth_shift = 6")
    # vth: "unsigned 17-bit integer (0 to 131071)"
    threshold_bits: int = _f(17, f"{LAVA} proc/lif/models.py PyLifModelBitAcc: vth precision=17")
    # bias_mant: "signed 13-bit integer (-4096 to 4095)"; bias_exp: "unsigned 3-bit"
    bias_mantissa_bits: int = _f(13, f"{LAVA} proc/lif/models.py: bias_mant precision=13")
    bias_exponent_bits: int = _f(3, f"{LAVA} proc/lif/models.py: bias_exp precision=3")
    # a_in: LavaPyType(PyInPort.VEC_DENSE, np.int16, precision=16)
    input_bits: int = _f(16, f"{LAVA} proc/lif/models.py: a_in np.int16 precision=16 "
                             "(a type annotation; the Python model does not saturate it)")


@dataclass(frozen=True)
class Loihi2LearningEngine(_Sourced):
    """What the on-chip learning engine can express, as Lava models it.

    A rule updates a synaptic variable ``w`` (weight), ``d`` (delay, Lava's
    ``tag_2``) or ``t`` (tag, ``tag_1``) by a **sum of products**::

        dw = sum_i  D_i * S_i * prod_j (V_ij + C_ij)

    ``D_i`` a dependency (``x0`` pre spike, ``y0`` post spike, or ``u_k``: once
    every ``2**k`` epochs), ``S_i = s_mant * 2**s_exp`` a scaling constant,
    ``V_ij`` a trace (``x1 x2 y1 y2 y3``), a dependency, a synaptic variable
    (``w d t``), or ``sgn(w|d|t + C)``, and ``C_ij`` an integer constant.
    Literals are ``int``, ``2^k`` or ``int*2^k`` only; there is no division,
    no other function, no other neuron's or synapse's variable
    (``magma/core/learning/symbolic_equation.py``, ``product_series.py``).
    """

    # string_symbols.py: PRE_TRACES = {X1, X2}; POST_TRACES = {Y1, Y2, Y3}
    pre_traces: tuple[str, ...] = _f(("x1", "x2"), f"{LAVA} magma/core/learning/string_symbols.py: PRE_TRACES")
    post_traces: tuple[str, ...] = _f(("y1", "y2", "y3"), f"{LAVA} magma/core/learning/string_symbols.py: POST_TRACES")
    # x0, y0 are 1-bit spike indicators (FACTOR_TO_WIDTH_DICT x0/y0: 1), u is the epoch gate u_k
    dependencies: tuple[str, ...] = _f(("x0", "y0", "u"), f"{LAVA} magma/core/learning/string_symbols.py: DEPENDENCIES")
    synaptic_variables: tuple[str, ...] = _f(("w", "d", "t"), f"{LAVA} magma/core/learning/string_symbols.py: SYNAPTIC_VARIABLES")
    rule_targets: tuple[str, ...] = _f(("dw", "dd", "dt"), f"{LAVA} magma/core/learning/string_symbols.py: LEARNING_RULE_TARGETS")
    # Factor._validate_sgn: sgn() only of a synaptic variable
    sgn_applies_to: tuple[str, ...] = _f(("w", "d", "t"), f"{LAVA} magma/core/learning/product_series.py: Factor._validate_sgn")
    # W_TRACE = 7 ("Width of the traces (x1, x2, y1, y2, y3)"); traces clip to [0, 127]
    trace_bits: int = _f(7, f"{LAVA} magma/core/learning/constants.py: W_TRACE = 7")
    trace_impulse_frac_bits: int = _f(8, f"{LAVA} magma/core/learning/constants.py: W_TRACE_FRACTIONAL_PART = 8")
    # FACTOR_TO_WIDTH_DICT: x0, y0 -> 1
    spike_dependency_bits: int = _f(1, f"{LAVA} magma/core/learning/constants.py: FACTOR_TO_WIDTH_DICT[x0|y0] = 1")
    # W_WEIGHTS_U = 8, W_WEIGHTS_S = 9: weight as a factor is a 9-bit signed value
    weight_factor_bits: int = _f(9, f"{LAVA} magma/core/learning/constants.py: W_WEIGHTS_S = W_WEIGHTS_U + 1 = 9")
    # W_TAG_1_U = W_TAG_2_U = 8
    tag_bits: int = _f(8, f"{LAVA} magma/core/learning/constants.py: W_TAG_1_U = W_TAG_2_U = 8")
    # W_CONST = 8: width of the additive constant C in (V + C)
    constant_bits: int = _f(8, f"{LAVA} magma/core/learning/constants.py: W_CONST = 8")
    # W_S_MANT = 4; ProductSeries raises unless -8 <= s_mantissa < 8 and -7 <= s_exp < 9
    scale_mantissa_bits: int = _f(4, f"{LAVA} magma/core/learning/constants.py: W_S_MANT = 4")
    scale_mantissa_range: tuple[int, int] = _f((-8, 7), f"{LAVA} magma/core/learning/product_series.py: "
                                                        "'s_mantissa < -8 or s_mantissa >= 8' raises")
    scale_exponent_range: tuple[int, int] = _f((-7, 8), f"{LAVA} magma/core/learning/product_series.py: "
                                                        "'s_exp < -7 or s_exp >= 9' raises")
    # W_ACCUMULATOR_U = 15, W_ACCUMULATOR_S = 16: the dw accumulator saturates at +-(2**15 - 1)
    accumulator_bits: int = _f(16, f"{LAVA} magma/core/learning/constants.py: W_ACCUMULATOR_S = 16")
    # W_EPOCH_TIME = 6; tx, ty precision=6 (within-epoch spike times)
    epoch_time_bits: int = _f(6, f"{LAVA} magma/core/learning/constants.py: W_EPOCH_TIME = 6")
    # weight update rounded stochastically back to the weight width
    update_rounding: str = _f("stochastic", f"{LAVA} magma/core/model/py/connection.py: "
                                            "_stochastic_round_synaptic_variable")
    # Neither number is public for Loihi 2; Lava 0.10.0 enforces no limit.
    max_products_per_rule: int | None = _f(None, "not public; Lava 0.10.0 ProductSeries enforces no limit", public=False)
    max_factors_per_product: int | None = _f(None, "not public; Lava 0.10.0 Product enforces no limit", public=False)
    # Loihi3FLearningRule: y1..y3 come from the post-synaptic neuron (third factor)
    third_factor_traces: tuple[str, ...] = _f(("y1", "y2", "y3"), f"{LAVA} magma/core/learning/learning_rule.py: "
                                                                  "Loihi3FLearningRule; magma/core/model/py/neuron.py "
                                                                  "s_out_y1..y3 precision=7")

    @property
    def trace_max(self) -> int:
        """Largest trace value, ``2**trace_bits - 1`` (traces are unsigned)."""
        return (1 << self.trace_bits) - 1


@dataclass(frozen=True)
class Loihi2Spec(_Sourced):
    """The numbers of one Loihi 2 chip that a mapper and quantiser use.

    Units: counts, bits, bytes, time steps. Fields whose ``is_public`` is
    False are parameters (the number is not published for Loihi 2).
    """

    # --- chip and core resources (paper / brief) ---------------------------
    neuro_cores_per_chip: int = _f(128, f"{ORCHARD_2021}, Table 1; {INTEL_BRIEF}")
    embedded_processors_per_chip: int = _f(6, f"{ORCHARD_2021}, Table 1; {INTEL_BRIEF}")
    max_neurons_per_core: int = _f(8192, f"{INTEL_BRIEF} (1M neurons/chip over 128 cores = 8192); "
                                         "treat as an upper bound: the neuron count a core holds "
                                         "depends on the state each neuron model allocates")
    max_synapses_per_chip: int = _f(120_000_000, f"{ORCHARD_2021}, Table 1; {INTEL_BRIEF} ('120M')")
    synaptic_memory_bytes_per_core: int = _f(128 * 1024, f"{INTEL_BRIEF}: 128 KB per core, "
                                                         "flexibly partitioned")
    # bits a dense synapse takes in that memory: not public (Loihi 2 has several
    # compressed synapse formats); the default counts the weight mantissa only.
    synapse_memory_bits: int = _f(8, "not public; default = max_weight_mantissa_bits", public=False)

    # --- weights (lava: utils/weightutils.py, proc/dense) -------------------
    # Dense: "Default is for weights to use full 8 bit precision"; W_WEIGHTS_U = 8
    max_weight_mantissa_bits: int = _f(8, f"{LAVA} proc/dense/process.py num_weight_bits (default 8); "
                                          "magma/core/learning/constants.py W_WEIGHTS_U = 8")
    # clip_weights(num_bits=8): mixed [-256, 255] (mantissa << 1), excitatory [0, 255]
    weight_register_range: tuple[int, int] = _f((-256, 255), f"{LAVA} utils/weightutils.py: clip_weights(num_bits=8), "
                                                             "_validate_weights")
    sign_modes: tuple[str, ...] = _f(SIGN_MODES, f"{LAVA} utils/weightutils.py: SignMode MIXED/EXCITATORY/INHIBITORY")
    # Lava applies a_out = (weights @ s) << weight_exp and validates no range.
    weight_exp_range: tuple[int, int] | None = _f(None, "not public for Loihi 2; Lava 0.10.0 proc/dense/models.py "
                                                        "applies any weight_exp", public=False)
    # DelayDense: "Loihi 2 has a maximum of 6 bits for delays ... 0 to 63 time steps"
    max_synaptic_delay: int = _f(63, f"{LAVA} proc/dense/models.py: PyDelayDenseModelBitAcc (delays precision=6)")

    # --- messages ---------------------------------------------------------
    max_message_bits: int = _f(32, f"{ORCHARD_2021}; {INTEL_BRIEF}: graded spikes with up to 32-bit payload")
    # Lava's graded-spike examples all use num_message_bits=24
    message_bits: int = _f(24, f"{LAVA} networks/gradedvecnetwork.py: num_message_bits=24 "
                               "(a choice, <= max_message_bits)", public=False)

    # --- neuron state (Lava's fixed-point LIF) -----------------------------
    state_bits: int = _f(24, f"{LAVA} proc/lif/models.py: u, v precision=24")
    neuron: LavaLifFixedPoint = _f(LavaLifFixedPoint(), f"{LAVA} proc/lif/models.py (see LavaLifFixedPoint)")

    # --- learning engine --------------------------------------------------
    learning: Loihi2LearningEngine = _f(Loihi2LearningEngine(), f"{LAVA} magma/core/learning/ "
                                                                "(see Loihi2LearningEngine)")

    def __post_init__(self) -> None:
        positive = ("neuro_cores_per_chip", "embedded_processors_per_chip", "max_neurons_per_core",
                    "max_synapses_per_chip", "synaptic_memory_bytes_per_core", "synapse_memory_bits",
                    "max_weight_mantissa_bits", "max_message_bits", "message_bits", "state_bits")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Loihi2Spec.{name} must be a positive int, got {value!r}")
        if self.message_bits > self.max_message_bits:
            raise ValueError(f"Loihi2Spec.message_bits={self.message_bits} exceeds the "
                             f"{self.max_message_bits}-bit graded spike payload")
        if self.max_weight_mantissa_bits > 8:
            raise ValueError("Loihi2Spec.max_weight_mantissa_bits > 8: Lava's weight "
                             "register holds at most 8 mantissa bits")
        if self.weight_exp_range is not None:
            lo, hi = self.weight_exp_range
            if lo > hi:
                raise ValueError(f"Loihi2Spec.weight_exp_range {self.weight_exp_range} is empty")
        bad = set(self.sign_modes) - set(SIGN_MODES)
        if bad:
            raise ValueError(f"Loihi2Spec.sign_modes has unknown modes {sorted(bad)}")

    # --- derived numbers --------------------------------------------------
    def weight_mantissa_range(self, sign_mode: str = "mixed",
                              mantissa_bits: int | None = None) -> tuple[int, int]:
        """Inclusive mantissa range for a sign mode (default: full width)."""
        bits = self.max_weight_mantissa_bits if mantissa_bits is None else mantissa_bits
        if bits > self.max_weight_mantissa_bits:
            raise ValueError(f"Loihi 2 weights have at most {self.max_weight_mantissa_bits} "
                             f"mantissa bits, asked for {bits}")
        return mantissa_range(bits, sign_mode)

    @property
    def max_neurons_per_chip(self) -> int:
        """``neuro_cores_per_chip * max_neurons_per_core`` (published: "1 million")."""
        return self.neuro_cores_per_chip * self.max_neurons_per_core
