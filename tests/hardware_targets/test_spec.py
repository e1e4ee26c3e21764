"""Loihi 2 spec numbers, their sources, the target interface and the registry."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from hardware_targets import (
    HardwareTarget,
    UnknownTargetError,
    WeightFormat,
    available_targets,
    get_target,
)
from hardware_targets.cpu import CPUSpec, CPUTarget
from hardware_targets.loihi2 import (
    LavaLifFixedPoint,
    Loihi2LearningEngine,
    Loihi2Spec,
    Loihi2Target,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "targets" / "loihi2.md"


# ---------------------------------------------------------------- numbers
def test_published_numbers():
    s = Loihi2Spec()
    assert s.neuro_cores_per_chip == 128
    assert s.max_neurons_per_core == 8192
    assert s.max_neurons_per_chip == 128 * 8192  # published as "1 million"
    assert s.synaptic_memory_bytes_per_core == 128 * 1024
    assert s.max_weight_mantissa_bits == 8
    assert s.max_message_bits == 32
    assert s.message_bits == 24
    assert s.state_bits == 24
    assert s.max_synaptic_delay == 63
    assert s.weight_register_range == (-256, 255)


def test_learning_engine_numbers():
    le = Loihi2Spec().learning
    assert le.pre_traces == ("x1", "x2")
    assert le.post_traces == ("y1", "y2", "y3")
    assert le.dependencies == ("x0", "y0", "u")
    assert le.trace_bits == 7 and le.trace_max == 127
    assert le.scale_mantissa_range == (-8, 7)
    assert le.scale_exponent_range == (-7, 8)
    assert le.accumulator_bits == 16
    assert le.max_products_per_rule is None  # not public


def test_weight_mantissa_ranges():
    s = Loihi2Spec()
    assert s.weight_mantissa_range("mixed") == (-128, 127)
    assert s.weight_mantissa_range("excitatory") == (0, 255)
    assert s.weight_mantissa_range("inhibitory") == (-255, 0)
    assert s.weight_mantissa_range("mixed", 4) == (-8, 7)
    with pytest.raises(ValueError, match="at most 8"):
        s.weight_mantissa_range("mixed", 9)


# ---------------------------------------------------------------- sources
def _all_classes():
    return (Loihi2Spec, Loihi2LearningEngine, LavaLifFixedPoint)


@pytest.mark.parametrize("cls", _all_classes())
def test_every_field_has_a_source(cls):
    for f in dataclasses.fields(cls):
        assert f.metadata.get("source"), f"{cls.__name__}.{f.name} has no source"
        assert "public" in f.metadata


def test_non_public_numbers_are_marked_as_parameters():
    assert not Loihi2Spec.is_public("weight_exp_range")
    assert not Loihi2Spec.is_public("synapse_memory_bits")
    assert not Loihi2Spec.is_public("message_bits")
    assert not Loihi2LearningEngine.is_public("max_products_per_rule")
    assert not Loihi2LearningEngine.is_public("max_factors_per_product")
    assert Loihi2Spec.is_public("neuro_cores_per_chip")
    assert "Orchard" in Loihi2Spec.source("max_message_bits")
    with pytest.raises(KeyError, match="no field 'cores'"):
        Loihi2Spec.source("cores")


@pytest.mark.parametrize("cls", _all_classes())
def test_docs_page_lists_every_field(cls):
    text = DOC.read_text()
    missing = [f.name for f in dataclasses.fields(cls) if f"`{f.name}`" not in text]
    assert not missing, f"docs/targets/loihi2.md does not mention {missing}"


def test_spec_is_frozen_and_validated():
    s = Loihi2Spec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.state_bits = 16  # type: ignore[misc]
    with pytest.raises(ValueError, match="32-bit graded spike"):
        Loihi2Spec(message_bits=33)
    with pytest.raises(ValueError, match="at most 8 mantissa"):
        Loihi2Spec(max_weight_mantissa_bits=9)
    with pytest.raises(ValueError, match="positive int"):
        Loihi2Spec(neuro_cores_per_chip=0)
    with pytest.raises(ValueError, match="is empty"):
        Loihi2Spec(weight_exp_range=(3, -3))


# ---------------------------------------------------------------- target interface
def test_loihi2_target_interface():
    t = get_target("loihi2")
    assert isinstance(t, Loihi2Target) and isinstance(t, HardwareTarget)
    assert t.name == "loihi2" and t.spec == Loihi2Spec()
    assert t.state_bits == 24 and t.message_bits == 24 and t.is_fixed_point
    fmt = t.weight_format("excitatory")
    assert fmt == WeightFormat(mantissa_bits=8, sign_mode="excitatory",
                               shared_exponent=True, weight_exp_range=None)
    assert fmt.mantissa_range == (0, 255) and not fmt.is_float
    assert t.weight_format(mantissa_bits=4).mantissa_range == (-8, 7)
    with pytest.raises(ValueError, match="at most 8"):
        t.weight_format(mantissa_bits=9)
    with pytest.raises(ValueError, match="no sign mode 'both'"):
        t.weight_format("both")


def test_cpu_target_has_no_limits():
    t = get_target("cpu")
    assert isinstance(t, CPUTarget) and t.name == "cpu"
    assert t.state_bits is None and t.message_bits is None and not t.is_fixed_point
    fmt = t.weight_format("mixed")
    assert fmt.is_float and fmt.mantissa_range is None
    assert t.spec == CPUSpec()
    with pytest.raises(ValueError, match="float weights"):
        t.weight_format(mantissa_bits=8)


def test_hardware_target_is_abstract():
    with pytest.raises(TypeError):
        HardwareTarget()  # type: ignore[abstract]


# ---------------------------------------------------------------- registry
def test_registry_names():
    assert available_targets() == ("cpu", "loihi2")
    assert get_target(" Loihi2 ").name == "loihi2"


def test_unknown_target_lists_valid_names():
    with pytest.raises(UnknownTargetError, match=r"unknown hardware target 'loihi3'; "
                                                 r"valid names: 'cpu', 'loihi2'"):
        get_target("loihi3")
    assert issubclass(UnknownTargetError, ValueError)


def test_registry_type_and_override_errors():
    with pytest.raises(TypeError, match="must be a string"):
        get_target(2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no spec field.*cores"):
        get_target("loihi2", cores=64)
    with pytest.raises(ValueError, match="graded spike"):
        get_target("loihi2", message_bits=40)
    t = get_target("loihi2", message_bits=16, weight_exp_range=(-8, 7))
    assert t.message_bits == 16
    assert t.weight_format().weight_exp_range == (-8, 7)


# ---------------------------------------------------------------- Lava parity
@pytest.mark.lava
def test_learning_constants_match_lava():
    const = pytest.importorskip("lava.magma.core.learning.constants")
    sym = pytest.importorskip("lava.magma.core.learning.string_symbols")
    le = Loihi2Spec().learning
    assert le.trace_bits == const.W_TRACE
    assert le.trace_impulse_frac_bits == const.W_TRACE_FRACTIONAL_PART
    assert le.constant_bits == const.W_CONST
    assert le.scale_mantissa_bits == const.W_S_MANT
    assert le.accumulator_bits == const.W_ACCUMULATOR_S
    assert le.epoch_time_bits == const.W_EPOCH_TIME
    assert le.weight_factor_bits == const.W_WEIGHTS_S
    assert le.tag_bits == const.W_TAG_1_U == const.W_TAG_2_U
    assert le.spike_dependency_bits == const.FACTOR_TO_WIDTH_DICT["x0"]
    assert Loihi2Spec().max_weight_mantissa_bits == const.W_WEIGHTS_U
    assert set(le.pre_traces) == sym.PRE_TRACES
    assert set(le.post_traces) == sym.POST_TRACES
    assert set(le.dependencies) == sym.DEPENDENCIES
    assert set(le.synaptic_variables) == sym.SYNAPTIC_VARIABLES
    assert set(le.rule_targets) == sym.LEARNING_RULE_TARGETS


@pytest.mark.lava
def test_scaling_constant_ranges_match_lava():
    lr = pytest.importorskip("lava.magma.core.learning.learning_rule")
    lo_e, hi_e = Loihi2Spec().learning.scale_exponent_range
    lr.LoihiLearningRule(dw=f"2^{lo_e} * x0 * y1")
    lr.LoihiLearningRule(dw=f"2^{hi_e} * x0 * y1")
    for bad in (f"2^{lo_e - 1} * x0 * y1", f"2^{hi_e + 1} * x0 * y1", "9 * x0 * y1"):
        with pytest.raises(ValueError):
            lr.LoihiLearningRule(dw=bad)
    lr.LoihiLearningRule(dw="7 * x0 * y1")  # largest odd mantissa


@pytest.mark.lava
def test_lif_widths_match_lava():
    models = pytest.importorskip("lava.proc.lif.models")
    n = Loihi2Spec().neuron
    m = models.PyLifModelBitAcc({})
    assert n.state_bits == m.uv_bitwidth == models.AbstractPyLifModelFixed.u.precision
    assert n.decay_bits == m.decay_shift == models.AbstractPyLifModelFixed.du.precision
    assert n.activation_shift == m.act_shift
    assert n.threshold_shift == m.vth_shift
    assert n.threshold_bits == models.PyLifModelBitAcc.vth.precision
    assert n.bias_mantissa_bits == models.AbstractPyLifModelFixed.bias_mant.precision
    assert n.bias_exponent_bits == models.AbstractPyLifModelFixed.bias_exp.precision
    assert n.input_bits == models.AbstractPyLifModelFixed.a_in.precision


@pytest.mark.lava
def test_weight_register_range_matches_lava_clip():
    wu = pytest.importorskip("lava.utils.weightutils")
    lo, hi = Loihi2Spec().weight_register_range
    clipped = wu.clip_weights(np.array([-1000, 1000]), wu.SignMode.MIXED, num_bits=8)
    assert clipped.tolist() == [lo, hi]
