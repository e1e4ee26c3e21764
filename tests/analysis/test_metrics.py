"""Tests for neuro_pc.analysis.metrics: angles, alignment, rank measures, PC energy."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuro_pc.analysis import (angle, entropy_effective_rank, norm_ratio, participation_ratio,
                               pc_energy, rank_measures, singular_values, stable_rank,
                               weight_alignment)

RANK_FNS = (entropy_effective_rank, participation_ratio, stable_rank)


def random_orthogonal(n, rng):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def matrix_with_spectrum(s, m, n, rng):
    """An (m, n) matrix with singular values s (len(s) <= min(m, n)) and random singular vectors."""
    U = random_orthogonal(m, rng)[:, :len(s)]
    V = random_orthogonal(n, rng)[:, :len(s)]
    return (U * np.asarray(s, dtype=float)) @ V.T


# ---------------------------------------------------------------------------
# angle / norm_ratio / weight_alignment
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("b, expected", [
    ([2.0, 0.0], 0.0),
    ([0.0, 3.0], 90.0),
    ([-1.0, 0.0], 180.0),
    ([0.5, math.sqrt(3) / 2], 60.0),     # cos 60° = 1/2
    ([1.0, 1.0], 45.0),
])
def test_angle_constructed_vectors(b, expected):
    a = [1.0, 0.0]
    assert angle(a, b) == pytest.approx(expected, abs=1e-10)
    assert angle(a, b, degrees=False) == pytest.approx(math.radians(expected), abs=1e-12)
    assert angle(b, a) == pytest.approx(expected, abs=1e-10)          # symmetric


def test_angle_matrices_are_vectorised():
    a = np.array([[1.0, 0.0], [0.0, 0.0]])
    b = np.array([[0.0, 0.0], [0.0, 1.0]])
    assert angle(a, b) == pytest.approx(90.0)
    assert angle(a, a + b) == pytest.approx(45.0)


def test_angle_zero_norm_is_nan_and_shape_mismatch_raises():
    assert math.isnan(angle(np.zeros(3), np.ones(3)))
    assert math.isnan(angle(np.ones(3), np.zeros(3)))
    assert math.isnan(angle(np.zeros((2, 2)), np.zeros((2, 2))))
    assert math.isnan(angle([1.0, np.nan], [1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        angle(np.ones((2, 3)), np.ones((3, 2)))


def test_angle_near_parallel_is_accurate():
    # arccos(cos) would give ~1e-6 degrees of noise here; the atan2 form is exact to round-off.
    x = np.array([1.0, 1e-9])
    assert angle(x, [1.0, 0.0]) == pytest.approx(math.degrees(1e-9), rel=1e-6)
    assert angle(x, -x) == 180.0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40),
       log_scale=st.floats(-150, 150), other_log_scale=st.floats(-150, 150))
def test_angle_self_zero_scale_invariance_and_range(seed, n, log_scale, other_log_scale):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = rng.standard_normal(n)
    c, d = 10.0 ** log_scale, 10.0 ** other_log_scale
    assert angle(x, x) == 0.0
    assert angle(c * x, x) < 1e-6
    base = angle(x, y)
    assert 0.0 <= base <= 180.0
    assert angle(c * x, d * y) == pytest.approx(base, abs=1e-7)        # positive scaling
    assert angle(-x, y) == pytest.approx(180.0 - base, abs=1e-7)      # sign flip
    cos = np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y))
    assert angle(x, y) == pytest.approx(math.degrees(math.acos(np.clip(cos, -1, 1))), abs=1e-5)


def test_norm_ratio():
    assert norm_ratio(np.full((2, 2), 3.0), np.full((4,), 1.0)) == pytest.approx(3.0)  # 6 / 2
    assert norm_ratio(np.ones(3), np.zeros(3)) == math.inf
    assert math.isnan(norm_ratio(np.zeros(3), np.zeros(3)))
    # ‖a‖² would overflow and ‖b‖² underflow if computed naively
    assert norm_ratio(np.full(4, 1e200), np.full(4, 1e-100)) == pytest.approx(1e300, rel=1e-12)



def test_weight_alignment_shapes_and_values():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((3, 5))          # (n_out, n_in)
    res = weight_alignment(W, 2.0 * W.T)     # B (n_in, n_out) = 2 Wᵀ: perfectly aligned
    assert set(res) == {"angle_deg", "norm_ratio"}
    assert res["angle_deg"] == pytest.approx(0.0, abs=1e-6)
    assert res["norm_ratio"] == pytest.approx(2.0)
    res = weight_alignment(W, -W.T)
    assert res["angle_deg"] == pytest.approx(180.0)
    # an orthogonal B: angle 90
    B = np.zeros((5, 3))
    B[0, 0] = 1.0
    Wo = np.zeros((3, 5))
    Wo[1, 1] = 4.0
    res = weight_alignment(Wo, B)
    assert res["angle_deg"] == pytest.approx(90.0)
    assert res["norm_ratio"] == pytest.approx(0.25)
    # random B is near 90 degrees in high dimension
    W = rng.standard_normal((100, 200))
    assert abs(weight_alignment(W, rng.standard_normal((200, 100)))["angle_deg"] - 90.0) < 3.0


def test_weight_alignment_shape_mismatch_names_both_shapes():
    W = np.ones((3, 5))
    with pytest.raises(ValueError) as info:
        weight_alignment(W, np.ones((3, 5)))     # forgot to transpose
    assert "(3, 5)" in str(info.value) and "W.shape" in str(info.value) and "B.shape" in str(info.value)
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        weight_alignment(W, np.ones((4, 3)))
    with pytest.raises(ValueError):
        weight_alignment(np.ones(3), np.ones(3))


# ---------------------------------------------------------------------------
# rank measures
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 5, 17])
def test_identity_has_full_rank_for_all_measures(n):
    r = rank_measures(np.eye(n))
    assert r == pytest.approx({"erank": n, "participation_ratio": n, "stable_rank": n})


def test_rank_one_is_one_for_all_measures():
    rng = np.random.default_rng(1)
    M = np.outer(rng.standard_normal(9), rng.standard_normal(6))
    assert rank_measures(M) == pytest.approx({"erank": 1.0, "participation_ratio": 1.0,
                                              "stable_rank": 1.0})
    assert rank_measures(np.diag([5.0, 0.0, 0.0])) == {"erank": 1.0, "participation_ratio": 1.0,
                                                       "stable_rank": 1.0}


def test_diag_3_1_by_hand():
    # s = (3, 1).
    # erank: p = (3/4, 1/4); H = -(3/4 ln 3/4 + 1/4 ln 1/4) = 0.75*0.2876821 + 0.25*1.3862944
    #        = 0.2157616 + 0.3465736 = 0.5623351; erank = e^0.5623351 = 1.7547654.
    # PR: eigenvalues of MᵀM are (9, 1): (9 + 1)² / (81 + 1) = 100/82 = 1.2195122.
    # stable rank: (9 + 1) / 9 = 1.1111111.
    M = np.diag([3.0, 1.0])
    assert entropy_effective_rank(M) == pytest.approx(1.7547654, rel=1e-7)
    assert entropy_effective_rank(M) == pytest.approx(4.0 / 3.0 ** 0.75, rel=1e-12)  # closed form
    assert participation_ratio(M) == pytest.approx(100.0 / 82.0)
    assert stable_rank(M) == pytest.approx(10.0 / 9.0)
    assert rank_measures(-M) == pytest.approx(rank_measures(M))   # signs of s do not exist


def test_k_equal_singular_values_give_k():
    rng = np.random.default_rng(2)
    M = matrix_with_spectrum([2.5] * 4, 10, 7, rng)
    for fn in RANK_FNS:
        assert fn(M) == pytest.approx(4.0, rel=1e-9)


def test_zero_and_empty_matrix_return_zero():
    for M in (np.zeros((3, 4)), np.zeros((0, 4))):
        assert rank_measures(M) == {"erank": 0.0, "participation_ratio": 0.0, "stable_rank": 0.0}


def test_singular_values_and_nonfinite():
    s = singular_values(np.diag([1.0, 3.0, 2.0]))
    np.testing.assert_allclose(s, [3.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="2-D"):
        singular_values(np.ones(3))
    bad = np.eye(3)
    bad[0, 1] = np.nan
    assert all(math.isnan(v) for v in rank_measures(bad).values())


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 12), n=st.integers(1, 12),
       log_scale=st.floats(-100, 100))
def test_rank_measures_invariances_and_ordering(seed, m, n, log_scale):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, min(m, n) + 1))
    s = rng.uniform(0.05, 1.0, size=k)
    M = matrix_with_spectrum(s, m, n, rng)
    base = rank_measures(M)
    # orthogonal transforms on either side and positive or negative rescaling leave all measures unchanged
    Q1, Q2 = random_orthogonal(m, rng), random_orthogonal(n, rng)
    c = -(10.0 ** log_scale)
    assert rank_measures(Q1 @ M @ Q2) == pytest.approx(base, rel=1e-9)
    assert rank_measures(c * M) == pytest.approx(base, rel=1e-9)
    assert rank_measures(M.T) == pytest.approx(base, rel=1e-9)
    # 1 <= stable rank <= PR <= rank and 1 <= erank <= rank
    tol = 1e-9
    assert 1 - tol <= base["stable_rank"] <= base["participation_ratio"] + tol
    assert base["participation_ratio"] <= k + tol
    assert 1 - tol <= base["erank"] <= k + tol
    # and against the formulas written directly
    p = s / s.sum()
    assert base["erank"] == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-9)
    assert base["participation_ratio"] == pytest.approx(np.sum(s**2) ** 2 / np.sum(s**4), rel=1e-9)
    assert base["stable_rank"] == pytest.approx(np.sum(s**2) / np.max(s) ** 2, rel=1e-9)


# ---------------------------------------------------------------------------
# pc_energy
# ---------------------------------------------------------------------------

def test_pc_energy_by_hand():
    e0 = np.array([[1.0, 2.0],     # ½(1 + 4) = 2.5
                   [3.0, 0.0]])    # ½(9)     = 4.5   -> mean 3.5
    e1 = np.array([[1.0],          # ½
                   [-1.0]])        # ½                -> mean 0.5
    per_layer, total = pc_energy([e0, e1])
    np.testing.assert_allclose(per_layer, [3.5, 0.5])
    assert total == pytest.approx(4.0)
    assert isinstance(total, float)


def test_pc_energy_edge_cases():
    per_layer, total = pc_energy([])
    assert per_layer.shape == (0,) and total == 0.0
    per_layer, total = pc_energy([np.array([2.0, 0.0])])     # 1-D: one sample, ½·4 = 2
    np.testing.assert_allclose(per_layer, [2.0])
    with pytest.raises(ValueError, match="batch sizes differ"):
        pc_energy([np.ones((2, 3)), np.ones((3, 3))])
