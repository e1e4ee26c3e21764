"""Weight and state quantisation: hand-computed cases, bounds, and Lava parity."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hardware_targets.quantize import (
    QuantizationError,
    QuantizedWeights,
    choose_weight_exp,
    clamp_to_bits,
    dequantize,
    determine_sign_mode,
    mantissa_range,
    quantize_state,
    quantize_weights,
    state_error,
)


# ---------------------------------------------------------------- ranges
def test_mantissa_ranges():
    # 8 bits: mixed is two's complement; the other modes spend all 8 bits on
    # the magnitude because the sign is fixed by the mode (Lava SignMode).
    assert mantissa_range(8, "mixed") == (-128, 127)
    assert mantissa_range(8, "excitatory") == (0, 255)
    assert mantissa_range(8, "inhibitory") == (-255, 0)
    # 1-bit mixed holds {-1, 0}, as Lava's num_weight_bits=1 does
    assert mantissa_range(1, "mixed") == (-1, 0)


# ---------------------------------------------------------------- hand cases
def test_half_and_minus_one_with_8_bits():
    # The exponent must fit -1.0 >= -128 * 2**e  ->  2**e >= 1/128  -> e = -7
    # (e = -8 would need -256). 0.5 / 2**-7 = 64 and -1.0 / 2**-7 = -128, both
    # exactly representable, so the error is zero.
    q = quantize_weights([[0.5, -1.0]], mantissa_bits=8, sign_mode="mixed")
    assert q.exp == -7
    assert q.mantissa.tolist() == [[64, -128]]
    assert q.mantissa.dtype == np.int64
    assert q.error.max_abs == 0.0 and q.error.rel_fro == 0.0
    assert q.error.n_saturated == 0
    assert q.lsb == 2.0 ** -7
    np.testing.assert_array_equal(q.dequantize(), [[0.5, -1.0]])


def test_exponent_is_finest_without_saturation():
    # mixed: 1.0 <= 127 * 2**e needs 2**e >= 1/127, i.e. e = -6 (2**-7 = 1/128
    # would map 1.0 to 128 > 127): mantissa 1.0 / 2**-6 = 64.
    q = quantize_weights([[1.0]], 8, "mixed")
    assert (q.exp, int(q.mantissa[0, 0])) == (-6, 64)
    # excitatory: 1.0 <= 255 * 2**e -> e = -7, mantissa 128.
    q = quantize_weights([[1.0]], 8, "excitatory")
    assert (q.exp, int(q.mantissa[0, 0])) == (-7, 128)
    # inhibitory mirrors excitatory.
    q = quantize_weights([[-1.0]], 8, "inhibitory")
    assert (q.exp, int(q.mantissa[0, 0])) == (-7, -128)


def test_nearest_rounds_ties_to_even():
    # exp forced to 0, so the mantissa is round(W): ties go to the even integer
    W = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, 0.51])
    q = quantize_weights(W, 8, "mixed", exp=0)
    assert q.mantissa.tolist() == [0, 2, 2, 0, -2, -2, 0, 1]
    assert q.error.max_abs == 0.5


def test_truncate_is_floor_and_magnitude_for_inhibitory():
    # Arithmetic right shift = floor: -0.25 -> -1 (Lava truncate_weights, mixed)
    q = quantize_weights([0.75, -0.25, 1.5], 8, "mixed", exp=0, rounding="truncate")
    assert q.mantissa.tolist() == [0, -1, 1]
    # inhibitory: Lava negates, shifts and negates back -> toward zero
    q = quantize_weights([-0.75, -1.5], 8, "inhibitory", exp=0, rounding="truncate")
    assert q.mantissa.tolist() == [0, -1]


def test_stochastic_needs_seed_is_reproducible_and_unbiased():
    W = np.full(20000, 0.25)
    with pytest.raises(QuantizationError, match="seed"):
        quantize_weights(W, 8, "mixed", exp=0, rounding="stochastic")
    a = quantize_weights(W, 8, "mixed", exp=0, rounding="stochastic", seed=3)
    b = quantize_weights(W, 8, "mixed", exp=0, rounding="stochastic", seed=3)
    np.testing.assert_array_equal(a.mantissa, b.mantissa)
    assert set(np.unique(a.mantissa)) <= {0, 1}
    # E[q] = 0.25; the sd of the mean is sqrt(.25*.75/20000) ~ 0.003
    assert abs(a.mantissa.mean() - 0.25) < 0.02


def test_error_report_values():
    # 0.3 with LSB 0.25 -> mantissa round(1.2) = 1 -> 0.25, error 0.05
    q = quantize_weights([[0.3]], 8, "mixed", exp=-2)
    assert q.mantissa.tolist() == [[1]]
    assert q.error.max_abs == pytest.approx(0.05)
    assert q.error.rms == pytest.approx(0.05)
    assert q.error.rel_fro == pytest.approx(0.05 / 0.3)
    assert q.error.lsb == 0.25


# ---------------------------------------------------------------- saturation
def test_saturation_at_the_boundary():
    # exp = 0: 127 and -128 are the largest representable 8-bit mixed values
    # and pass untouched; 128 and -129 are one beyond and clamp.
    q = quantize_weights([127.0, 128.0, -128.0, -129.0], 8, "mixed", exp=0)
    assert q.mantissa.tolist() == [127, 127, -128, -128]
    assert q.error.n_saturated == 2
    assert q.error.max_abs == 1.0
    q = quantize_weights([255.0, 256.0], 8, "excitatory", exp=0)
    assert q.mantissa.tolist() == [255, 255]
    assert q.error.n_saturated == 1


def test_max_exp_forces_saturation_min_exp_only_coarsens():
    # 1000 needs e = 3 (1000/8 = 125 <= 127); max_exp = 0 clamps it to 127.
    q = quantize_weights([[1000.0, 1.0]], 8, "mixed", max_exp=0)
    assert q.exp == 0 and q.mantissa.tolist() == [[127, 1]]
    assert q.error.n_saturated == 1
    # min_exp = 1 on small weights only loses resolution: 1.0/2 = 0.5 -> 0 (even)
    q = quantize_weights([[1.0, 4.0]], 8, "mixed", min_exp=1)
    assert q.exp == 1 and q.mantissa.tolist() == [[0, 2]]
    assert q.error.n_saturated == 0
    with pytest.raises(QuantizationError, match="outside"):
        quantize_weights([[1.0]], 8, "mixed", exp=5, max_exp=3)


# ---------------------------------------------------------------- errors
def test_excitatory_rejects_negative_weights():
    with pytest.raises(QuantizationError, match="excitatory.*1 negative"):
        quantize_weights([[0.5, -0.1]], 8, "excitatory")


def test_inhibitory_rejects_positive_weights():
    with pytest.raises(QuantizationError, match="inhibitory.*1 positive"):
        quantize_weights([[-0.5, 0.1]], 8, "inhibitory")


@pytest.mark.parametrize("kwargs, message", [
    (dict(sign_mode="both"), "sign_mode 'both'.*'mixed'"),
    (dict(rounding="up"), "rounding 'up'.*'nearest'"),
    (dict(mantissa_bits=0), "mantissa_bits"),
    (dict(mantissa_bits=8.0), "mantissa_bits must be an int"),
])
def test_bad_arguments_name_the_valid_choices(kwargs, message):
    with pytest.raises(QuantizationError, match=message):
        quantize_weights([[0.5]], **kwargs)


def test_non_finite_weights_rejected():
    with pytest.raises(QuantizationError, match="NaN or infinite"):
        quantize_weights([[np.nan, 1.0]])


def test_zero_matrix():
    q = quantize_weights(np.zeros((2, 3)), 8, "mixed")
    assert q.exp == 0 and not q.mantissa.any()
    assert q.error.rel_fro == 0.0
    assert q.compact().mantissa_bits == 1


def test_determine_sign_mode_follows_lava_rule():
    assert determine_sign_mode([[0.0, 1.0]]) == "excitatory"
    assert determine_sign_mode([[0.0, 0.0]]) == "excitatory"
    assert determine_sign_mode([[-1.0, 0.0]]) == "inhibitory"
    assert determine_sign_mode([[-1.0, 1.0]]) == "mixed"


# ---------------------------------------------------------------- compact / Lava form
def test_compact_strips_shared_trailing_zeros():
    # 64 = 1 * 2**6 and -128 = -2 * 2**6: shift 6 into the exponent, and the
    # mantissas {1, -2} need 2 signed bits ([-2, 1]).
    q = quantize_weights([[64.0, -128.0]], 8, "mixed").compact()
    assert q.mantissa.tolist() == [[1, -2]]
    assert (q.mantissa_bits, q.exp) == (2, 6)
    np.testing.assert_array_equal(q.dequantize(), [[64.0, -128.0]])


def test_to_lava_dense_hand_case():
    # mantissa [64, -128] at exp -7, 8-bit mixed: Lava stores mantissa << 1
    # (8 - 8 + is_mixed) = [128, -256]; the accumulator shift is
    # -7 - 1 = -8, so 128 * 2**-8 = 0.5 and -256 * 2**-8 = -1.0.
    lw = quantize_weights([[0.5, -1.0]], 8, "mixed").to_lava_dense()
    assert lw.weights.tolist() == [[128, -256]]
    assert (lw.weight_exp, lw.num_weight_bits, lw.sign_mode) == (-8, 8, "mixed")
    np.testing.assert_array_equal(lw.effective(), [[0.5, -1.0]])
    # 6 fractional bits in the target register: the same weights, shift -2
    assert quantize_weights([[0.5, -1.0]]).to_lava_dense(6).weight_exp == -2


def test_to_lava_dense_rejects_more_than_8_bits():
    with pytest.raises(QuantizationError, match="at most 8"):
        quantize_weights([[0.5]], mantissa_bits=10).to_lava_dense()


# ---------------------------------------------------------------- properties
_weights = arrays(
    np.float64, st.tuples(st.integers(1, 5), st.integers(1, 5)),
    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False,
                       allow_subnormal=False, width=64),
)


@settings(max_examples=200, deadline=None)
@given(W=_weights, bits=st.integers(2, 16))
def test_nearest_round_trip_within_half_lsb(W, bits):
    q = quantize_weights(W, bits, "mixed")
    lo, hi = mantissa_range(bits, "mixed")
    assert q.mantissa.min() >= lo and q.mantissa.max() <= hi
    assert q.error.n_saturated == 0
    assert np.all(np.abs(W - q.dequantize()) <= q.lsb / 2)
    assert q.error.max_abs <= q.lsb / 2


@settings(max_examples=100, deadline=None)
@given(W=_weights, rounding=st.sampled_from(["truncate", "stochastic"]),
       seed=st.integers(0, 2**32 - 1))
def test_other_roundings_within_one_lsb(W, rounding, seed):
    q = quantize_weights(W, 8, "mixed", rounding=rounding, seed=seed)
    assert q.error.n_saturated == 0
    # the exact error is < 1 LSB; computing W - W_q in float can round it up to 1 LSB
    assert np.all(np.abs(W - q.dequantize()) <= q.lsb)


@settings(max_examples=100, deadline=None)
@given(W=_weights, bits=st.integers(2, 12))
def test_chosen_exponent_is_minimal(W, bits):
    e = choose_weight_exp(W, bits, "mixed")
    lo, hi = mantissa_range(bits, "mixed")
    if np.any(W != 0):
        finer = np.ldexp(W, -(e - 1))
        assert finer.min() < lo or finer.max() > hi


@settings(max_examples=100, deadline=None)
@given(W=_weights)
def test_compact_preserves_values(W):
    q = quantize_weights(W, 8, "mixed")
    c = q.compact()
    assert c.mantissa_bits <= 8
    np.testing.assert_array_equal(c.dequantize(), q.dequantize())


# ---------------------------------------------------------------- state
def test_quantize_state_hand_case():
    # frac_bits = 2: LSB 0.25, so 0.5 -> 2, -0.5 -> -2, 1.25 -> 5
    q = quantize_state([0.5, -0.5, 1.25], bits=8, frac_bits=2)
    assert q.tolist() == [2, -2, 5]
    np.testing.assert_array_equal(dequantize(q, 2), [0.5, -0.5, 1.25])


def test_state_saturation_two_complement_clamp():
    # 8-bit signed: [-128, 127]; one beyond on each side clamps
    q = quantize_state([127, 128, -128, -129], bits=8, frac_bits=0)
    assert q.tolist() == [127, 127, -128, -128]
    # 24-bit (Lava LIF u, v): 2**23 - 1 is the largest value
    q = quantize_state([2**23 - 1, 2**23, -(2**23), -(2**23) - 1], frac_bits=0)
    assert q.tolist() == [2**23 - 1, 2**23 - 1, -(2**23), -(2**23)]


def test_state_symmetric_clamp_and_wrap():
    # Lava LIF v clamps to +-(2**(b-1) - 1): -128 becomes -127 at 8 bits
    q = quantize_state([128, -128, -129], bits=8, frac_bits=0, overflow="saturate_symmetric")
    assert q.tolist() == [127, -127, -127]
    # two's-complement wrap: 128 -> -128, -129 -> 127, 300 -> 300 - 256 = 44
    q = quantize_state([128, -129, 300], bits=8, frac_bits=0, overflow="wrap")
    assert q.tolist() == [-128, 127, 44]


def test_unsigned_state_like_a_trace():
    # a 7-bit unsigned trace holds [0, 127]
    assert quantize_state([127, 128, -1], bits=7, frac_bits=0, signed=False).tolist() == [127, 127, 0]
    assert quantize_state([127, 128, -1], bits=7, frac_bits=0, signed=False,
                          overflow="wrap").tolist() == [127, 0, 127]


def test_clamp_to_bits_counts_out_of_range():
    out, n = clamp_to_bits(np.array([-200, 0, 200]), 8)
    assert out.tolist() == [-128, 0, 127] and n == 2


def test_state_needs_frac_bits_and_dequantize_needs_it_too():
    with pytest.raises(TypeError):
        quantize_state([0.5])  # frac_bits is keyword-only and required
    with pytest.raises(QuantizationError, match="frac_bits is required"):
        dequantize(np.array([1, 2]))
    qw = quantize_weights([[0.5]])
    assert isinstance(qw, QuantizedWeights)
    np.testing.assert_array_equal(dequantize(qw), qw.dequantize())


def test_state_error_report():
    x = np.array([0.3, 100.0])
    q = quantize_state(x, bits=8, frac_bits=2)  # 100 * 4 = 400 saturates to 127
    rep = state_error(x, q, 2)
    assert rep.n_saturated == 1
    assert rep.lsb == 0.25
    assert rep.max_abs == pytest.approx(100.0 - 127 / 4)


@settings(max_examples=200, deadline=None)
@given(x=arrays(np.float64, st.integers(1, 20),
                elements=st.floats(-1000, 1000, allow_nan=False, width=64)),
       frac_bits=st.integers(0, 12))
def test_state_round_trip_within_half_lsb(x, frac_bits):
    # 1000 * 2**12 < 2**22, so a 24-bit register never saturates here
    q = quantize_state(x, bits=24, frac_bits=frac_bits)
    assert np.all(np.abs(x - dequantize(q, frac_bits)) <= 2.0 ** -frac_bits / 2)


# ---------------------------------------------------------------- Lava parity
def _lava():
    return pytest.importorskip("lava.utils.weightutils")


_LAVA_MODE = {"mixed": "MIXED", "excitatory": "EXCITATORY", "inhibitory": "INHIBITORY"}


@pytest.mark.lava
def test_compact_matches_lava_optimize_weight_bits():
    """Integer matrices: our compact form is exactly Lava's optimised form."""
    wu = _lava()
    rng = np.random.default_rng(1234)
    checked = 0
    for _ in range(300):
        mode = str(rng.choice(list(_LAVA_MODE)))
        mag = int(rng.choice([1, 3, 8, 20, 64, 100, 127]))
        W = rng.integers(-mag, mag + 1, size=(int(rng.integers(1, 5)), int(rng.integers(1, 5))))
        if mode == "excitatory":
            W = np.abs(W)
        elif mode == "inhibitory":
            W = -np.abs(W)
        if not W.any():
            continue
        sm = getattr(wu.SignMode, _LAVA_MODE[mode])
        ref = wu.optimize_weight_bits(W.copy(), sm)
        ref_l2 = wu.optimize_weight_bits(W.copy(), sm, loihi2=True)
        ours = quantize_weights(W.astype(float), 8, mode).compact()
        lw = ours.to_lava_dense()
        assert ours.mantissa.tolist() == np.asarray(ref_l2.weights).tolist(), W
        assert ours.mantissa_bits == ref.num_weight_bits, W
        assert lw.weights.tolist() == np.asarray(ref.weights).tolist(), W
        assert lw.weight_exp == ref.weight_exp, W
        checked += 1
    assert checked > 250


@pytest.mark.lava
@pytest.mark.parametrize("mode", ["mixed", "excitatory", "inhibitory"])
@pytest.mark.parametrize("bits", [8, 5, 3])
def test_lava_normalisation_leaves_our_weights_unchanged(mode, bits):
    """Lava's Dense fixed_pt model applies clip_weights then truncate_weights;
    our register values are already in that normal form, so it keeps them."""
    wu = _lava()
    rng = np.random.default_rng(bits)
    W = rng.normal(size=(6, 7))
    W = {"mixed": W, "excitatory": np.abs(W), "inhibitory": -np.abs(W)}[mode]
    q = quantize_weights(W, bits, mode)
    lw = q.to_lava_dense(state_frac_bits=6)
    sm = getattr(wu.SignMode, _LAVA_MODE[mode])
    normal = wu.truncate_weights(wu.clip_weights(lw.weights, sm, num_bits=8), sm, lw.num_weight_bits)
    np.testing.assert_array_equal(normal, lw.weights)
    np.testing.assert_array_equal(lw.effective(), q.dequantize() * 2.0**6)


@pytest.mark.lava
def test_lava_dense_accumulation_is_floor_of_our_product():
    """PyDenseModelBitAcc: a_out = (weights[:, s].sum(1)) >> -weight_exp.
    With our representation that is floor(W_q @ s * 2**frac_bits)."""
    wu = _lava()
    rng = np.random.default_rng(7)
    W = rng.normal(size=(5, 9))
    q = quantize_weights(W, 8, "mixed")
    lw = q.to_lava_dense(state_frac_bits=4)
    sm = wu.SignMode.MIXED
    weights = wu.truncate_weights(wu.clip_weights(lw.weights, sm, num_bits=8), sm, 8)
    for _ in range(20):
        s = rng.random(9) < 0.5
        a_accum = weights[:, s].sum(axis=1)
        lava_out = (np.left_shift(a_accum, lw.weight_exp) if lw.weight_exp > 0
                    else np.right_shift(a_accum, -lw.weight_exp))
        ours = np.floor(q.dequantize() @ s * 2.0**4).astype(int)
        np.testing.assert_array_equal(lava_out, ours)


@pytest.mark.lava
def test_sign_mode_rule_matches_lava():
    wu = _lava()
    for W in ([[0.0, 1.0]], [[0.0, 0.0]], [[-1.0, 0.0]], [[-1.0, 2.0]]):
        ref = wu.determine_sign_mode(np.array(W))
        assert determine_sign_mode(W) == ref.name.lower()
