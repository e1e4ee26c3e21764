"""Whole-circuit quantisation: hand-computed formats, errors, Lava parameters."""
from __future__ import annotations

import json

import numpy as np
import pytest

from hardware_targets.circuit_quant import quantize_circuit
from hardware_targets.quantize import QuantizationError
from neuro_pc.ir import Circuit, Init, Population, Projection, Schedule
from neuro_pc.models import mlp


def _two(scale: float = 1.0, rule=None) -> Circuit:
    pops = (Population("x", 2, ("r",), streams={"r": "x"}, model="input"),
            Population("h", 2, ("r",), ports=("ff",), update=("r = ff",)))
    projs = (Projection("W", "x", "h", "ff", init=Init("uniform"), scale=scale, rule=rule),)
    return Circuit("two", pops, projs, Schedule(window=3), streams={"x": 2})


def test_exact_matrix():
    W = np.array([[0.5, -0.25], [0.125, 0.0]])
    p = quantize_circuit(_two(), {"W": W})["W"]
    # 8-bit mixed mantissas hold [-128, 127]; 0.5 / 2**-8 = 128 does not fit,
    # 0.5 / 2**-7 = 64 does: exp = -7 and every entry is a multiple of 2**-7
    assert p.exp == -7 and p.mantissa_bits == 8 and p.sign_mode == "mixed"
    np.testing.assert_array_equal(p.mantissa, [[64, -32], [16, 0]])
    assert p.error.max_abs == 0.0 and p.error.n_saturated == 0
    # Lava's register holds mantissa << (8 - 8 + 1) = 2x: [[128, -64], [32, 0]],
    # weight_exp = exp - 1 = -8 so weights * 2**-8 == W
    lava = p.lava()
    np.testing.assert_array_equal(lava.weights, [[128, -64], [32, 0]])
    assert lava.weight_exp == -8
    np.testing.assert_array_equal(lava.effective(), W)
    # with 12 fractional bits of state the same weights shift 12 further
    assert p.lava(state_frac_bits=12).weight_exp == 4
    assert p.register_lsb == 2.0 ** -8


def test_rounding_error_is_half_an_lsb_at_most():
    W = np.array([[0.3, 0.0], [0.0, 0.0]])
    p = quantize_circuit(_two(), {"W": W})["W"]
    # 0.3 / 2**-9 = 153.6 > 127, 0.3 / 2**-8 = 76.8 -> exp -8, mantissa round(76.8) = 77
    assert p.exp == -8 and p.mantissa[0, 0] == 77
    # error |0.3 - 77/256| = 0.00078125 <= lsb/2 = 2**-9
    assert p.error.max_abs == pytest.approx(77 / 256 - 0.3)
    assert p.error.max_abs <= p.lsb / 2


def test_scale_is_part_of_the_matrix():
    W = np.array([[0.5, 0.0], [0.0, 0.0]])
    p = quantize_circuit(_two(scale=2.0), {"W": W})["W"]
    # the projection applies 2 * W = 1.0: 1.0 / 2**-7 = 128 > 127, so exp = -6, mantissa 64
    assert p.exp == -6 and p.mantissa[0, 0] == 64


def test_zero_matrix_gets_zero_exp():
    p = quantize_circuit(_two(), {"W": np.zeros((2, 2))})["W"]
    assert p.exp == -7 and not p.mantissa.any() and p.error.max_abs == 0.0
    assert quantize_circuit(_two(), {"W": np.zeros((2, 2))}, zero_exp=-3)["W"].exp == -3


def test_tied_projection_is_the_transposed_source():
    c = mlp([3, 4, 2], rule="bp")
    w = c.init_weights(0)
    q = quantize_circuit(c, w)
    assert q["B1"].tied and not q["B1"].plastic
    np.testing.assert_array_equal(q["B1"].mantissa, q["W2"].mantissa.T)
    assert "B1" not in quantize_circuit(c, w, include_tied=False).projections


def test_sign_mode_auto():
    W = np.array([[0.5, 0.25], [0.0, 0.125]])
    # fixed and non-negative -> excitatory: 8 bits [0, 255], 0.5 / 2**-9 = 256 > 255 -> exp -8
    p = quantize_circuit(_two(), {"W": W}, sign_mode="auto")["W"]
    assert p.sign_mode == "excitatory" and p.exp == -8 and p.mantissa[0, 0] == 128
    from neuro_pc.ir import Rule
    plastic = _two(rule=Rule("dw = eta * post.r * pre.r", {"eta": 0.1}))
    assert quantize_circuit(plastic, {"W": W}, sign_mode="auto")["W"].sign_mode == "mixed"


def test_cpu_is_float():
    p = quantize_circuit(_two(), {"W": np.ones((2, 2))}, "cpu")["W"]
    assert p.mantissa is None and p.exp is None and p.error.max_abs == 0.0
    with pytest.raises(QuantizationError, match="floating-point"):
        p.lava()


def test_errors():
    with pytest.raises(QuantizationError, match="shape"):
        quantize_circuit(_two(), {"W": np.ones((3, 2))})
    with pytest.raises(QuantizationError, match="no weights"):
        quantize_circuit(_two(), {})


def test_report_is_json_and_table():
    c = mlp([8, 6, 4], rule="fa")
    q = quantize_circuit(c, c.init_weights(1))
    rows = json.loads(json.dumps(q.report()))
    assert [r["projection"] for r in rows] == [p.name for p in c.projections]
    assert all(r["rel_error"] < 0.02 for r in rows)  # 8-bit mantissas: well under 2 %
    assert "W1" in q.format()
