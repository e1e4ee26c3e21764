"""Tests for neuro_pc.rules.muon: quintic Newton–Schulz, exact orthogonalisation, Muon state."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuro_pc.analysis import (NS_COEFFS, Muon, angle, newton_schulz, orthogonalize_exact,
                               rank_measures, stable_rank)

A, B, C = NS_COEFFS


def p(x):
    """The scalar quintic that Newton–Schulz applies to each singular value."""
    return A * x + B * x**3 + C * x**5


def p_iter(x, k):
    for _ in range(k):
        x = p(x)
    return x


def random_orthogonal(n, rng):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def matrix_with_spectrum(s, m, n, rng):
    U = random_orthogonal(m, rng)[:, :len(s)]
    V = random_orthogonal(n, rng)[:, :len(s)]
    return (U * np.asarray(s, dtype=float)) @ V.T


def numerical_rank(M, rtol=1e-10):
    # Newton–Schulz multiplies round-off in the null space by up to a^5 ≈ 486 (slope of p at 0, five
    # steps) and adds ~machine-eps per step, leaving a floor of ~1e-13 relative (measured ~4e-14).
    # numpy's default tolerance (max(m, n)·eps ≈ 1e-14) is below that floor, so use 1e-10 · s_max.
    s = np.linalg.svd(M, compute_uv=False)
    return int(np.sum(s > rtol * s[0])) if s[0] > 0 else 0


# ---------------------------------------------------------------------------
# the quintic Newton–Schulz iteration
# ---------------------------------------------------------------------------

def test_coefficients_are_muons():
    assert NS_COEFFS == (3.4445, -4.7750, 2.0315)


@pytest.mark.parametrize("steps", [0, 1, 2, 5, 8])
def test_ns_applies_the_quintic_to_each_singular_value(steps):
    # For G = U S Vᵀ, NS(G) = U p^k(S/‖G‖_F) Vᵀ: same singular vectors, scalar map on the spectrum.
    rng = np.random.default_rng(0)
    s = np.array([4.0, 2.0, 1.0, 0.3])
    U = random_orthogonal(6, rng)[:, :4]
    V = random_orthogonal(5, rng)[:, :4]
    G = (U * s) @ V.T
    expected = (U * p_iter(s / np.linalg.norm(s), steps)) @ V.T
    np.testing.assert_allclose(newton_schulz(G, steps=steps, eps=0.0), expected, atol=1e-12)


def test_the_invariant_band_of_the_quintic():
    # Why [0.68, 1.135]: p has a local minimum at x ≈ 1.050 with p ≈ 0.6818, and p(0.6818) ≈ 1.1344;
    # on J = [0.6818, 1.1344] p falls to that minimum and then rises to p(1.1344) ≈ 0.753, so p(J) = J
    # (an invariant interval; the iteration oscillates in J and never converges to 1). A σ/‖G‖_F ≥ 0.01
    # enters J within 4 steps (0.01 → 0.034 → 0.118 → 0.400 → 1.093 → 0.699; the slope at 0 is a = 3.4445)
    # and the grid check below confirms all of [0.01, 1] is in J after five steps. Smaller σ need
    # more steps (σ < 0.0015 is still below 0.68 after five), and
    # σ in (0.0015, 0.01) can land on p's global max on [0, 1], p(0.5545) = 1.2024, at step 5.
    x = np.linspace(0.01, 1.0, 200_001)
    y = p_iter(x, 5)
    assert 0.681 < y.min() and y.max() < 1.135
    J = np.linspace(0.6818, 1.1344, 200_001)
    pj = p(J)
    assert pj.min() >= 0.6818 - 1e-4 and pj.max() <= 1.1344 + 1e-4
    # not a convergent iteration: a single non-zero singular value ends at p^5(1) ≈ 0.696, not 1
    assert p_iter(1.0, 5) == pytest.approx(0.6964364, rel=1e-6)
    # and below 0.0015 five steps are not enough
    assert p_iter(0.001, 5) < 0.5


@pytest.mark.parametrize("shape", [(32, 64), (64, 32), (10, 200), (200, 10), (40, 40)])
def test_ns_singular_values_in_band_and_close_to_exact(shape):
    rng = np.random.default_rng(sum(shape))
    m, n = shape
    k = min(m, n)
    # σ in [0.2, 1] gives σ/‖G‖_F ≥ 0.2/sqrt(k) ≥ 0.2/sqrt(40) ≈ 0.032 ≥ 0.01: inside the band's premise.
    s = rng.uniform(0.2, 1.0, k)
    G = matrix_with_spectrum(s, m, n, rng)
    assert (np.linalg.svd(G, compute_uv=False) / np.linalg.norm(G)).min() >= 0.01
    O = newton_schulz(G)
    sv = np.linalg.svd(O, compute_uv=False)
    assert 0.68 <= sv.min() and sv.max() <= 1.135
    # Angle to U Vᵀ: NS(G) = U f(S) Vᵀ with f in [m, M] = [0.6818, 1.1344], so
    # cos ∠ = Σf/(sqrt(k)·sqrt(Σf²)) ≥ 2·sqrt(mM)/(m+M) = 0.9684 (Kantorovich / Pólya–Szegő),
    # i.e. at most 14.4°. Typical random spectra give ~9–10°.
    exact = orthogonalize_exact(G)
    assert angle(O, exact) < 14.4
    assert angle(O, exact) < angle(G, exact)
    # same singular vectors: Uᵀ O V is diagonal
    U, _, Vt = np.linalg.svd(G, full_matrices=False)
    core = U.T @ O @ Vt.T
    np.testing.assert_allclose(core - np.diag(np.diag(core)), 0.0, atol=1e-10)


def test_random_gaussian_matrices_are_in_band():
    # Rectangular Gaussian matrices have σ_min/‖G‖_F ≈ (1 − sqrt(m/n))/sqrt(m) ≥ 0.05 for these shapes.
    rng = np.random.default_rng(3)
    for shape in [(32, 64), (64, 32), (16, 256)]:
        sv = np.linalg.svd(newton_schulz(rng.standard_normal(shape)), compute_uv=False)
        assert 0.68 <= sv.min() and sv.max() <= 1.135


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 9), n=st.integers(1, 9),
       log_c=st.floats(-50, 50))
def test_ns_equivariances(seed, m, n, log_c):
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((m, n))
    O = newton_schulz(G, eps=0.0)
    Q1, Q2 = random_orthogonal(m, rng), random_orthogonal(n, rng)
    c = 10.0 ** log_c
    np.testing.assert_allclose(newton_schulz(G.T, eps=0.0), O.T, atol=1e-10)       # transpose branch
    np.testing.assert_allclose(newton_schulz(Q1 @ G @ Q2, eps=0.0), Q1 @ O @ Q2, atol=1e-9)
    np.testing.assert_allclose(newton_schulz(c * G, eps=0.0), O, atol=1e-10)       # scale-free
    np.testing.assert_allclose(newton_schulz(-G, eps=0.0), -O, atol=1e-12)         # odd


def test_ns_edge_cases():
    assert np.all(newton_schulz(np.zeros((3, 4))) == 0.0)
    G = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(newton_schulz(G, steps=0, eps=0.0), G / np.linalg.norm(G))
    assert newton_schulz(G.astype(np.float32)).dtype == np.float32
    assert newton_schulz(G.astype(int)).dtype == np.float64
    with pytest.raises(ValueError, match="2-D"):
        newton_schulz(np.ones(3))
    with pytest.raises(ValueError, match="steps"):
        newton_schulz(G, steps=-1)


def test_orthogonalize_exact():
    rng = np.random.default_rng(4)
    G = rng.standard_normal((7, 4))
    O = orthogonalize_exact(G)
    np.testing.assert_allclose(O.T @ O, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(np.linalg.svd(O, compute_uv=False), 1.0, atol=1e-12)
    # rank-deficient: the null directions stay null (as in Newton–Schulz), not an arbitrary completion
    u, v = rng.standard_normal(7), rng.standard_normal(4)
    O1 = orthogonalize_exact(np.outer(u, v))
    np.testing.assert_allclose(O1, np.outer(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)), atol=1e-12)
    assert np.all(orthogonalize_exact(np.zeros((2, 3))) == 0.0)


# ---------------------------------------------------------------------------
# Muon
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(30, 20), (20, 30), (8, 8)])
def test_muon_without_momentum_keeps_batch1_updates_rank1(shape):
    # With beta = 0 and a batch-1 update u vᵀ (δ·preᵀ), Muon is NS on a rank-1 matrix: its one singular
    # value is σ/‖G‖_F = 1 and maps to p^5(1); the other (zero) ones stay zero up to round-off.
    # So the output is the scaled Hebbian outer product κ·u vᵀ/(‖u‖‖v‖): it cannot raise the rank.
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    muon = Muon(beta=0.0)
    kappa = p_iter(1.0, 5) * max(1.0, shape[0] / shape[1]) ** 0.5
    for _ in range(5):                                  # several independent samples
        u, v = rng.standard_normal(shape[0]), rng.standard_normal(shape[1])
        G = np.outer(u, v)
        O = muon.step(G)
        assert stable_rank(O) == pytest.approx(1.0, abs=1e-12)
        assert rank_measures(O) == pytest.approx({"erank": 1.0, "participation_ratio": 1.0,
                                                  "stable_rank": 1.0}, abs=1e-9)
        assert numerical_rank(O) == 1
        assert angle(O, G) < 1e-6
        np.testing.assert_allclose(O, kappa * G / (np.linalg.norm(u) * np.linalg.norm(v)), atol=1e-12)


def test_muon_with_momentum_raises_rank_of_rank1_updates():
    rng = np.random.default_rng(5)
    muon = Muon(beta=0.95, nesterov=True)
    ranks, sranks = [], []
    for _ in range(6):
        G = np.outer(rng.standard_normal(30), rng.standard_normal(20))
        O = muon.step(G)
        ranks.append(numerical_rank(O))
        sranks.append(stable_rank(O))
        # the momentum sum before orthogonalisation is low-rank with a decaying spectrum; NS flattens it
        assert rank_measures(O)["erank"] >= rank_measures(muon.last_pre_orth)["erank"] - 1e-9
    assert ranks == [1, 2, 3, 4, 5, 6]
    assert sranks[0] == pytest.approx(1.0)
    assert min(sranks[1:]) > 1.3 and sranks[-1] > 3.0
    # classic (non-Nesterov) momentum too
    muon = Muon(beta=0.9, nesterov=False)
    for _ in range(3):
        O = muon.step(np.outer(rng.standard_normal(10), rng.standard_normal(10)))
    assert numerical_rank(O) == 3 and stable_rank(O) > 1.5


def test_muon_matches_reference_update():
    # Keller Jordan's muon_update: buf.lerp_(g, 1-β); u = g.lerp(buf, β) if nesterov else buf;
    # NS; times max(1, rows/cols)^0.5.
    rng = np.random.default_rng(6)
    beta = 0.8
    for nesterov in (True, False):
        muon = Muon(beta=beta, nesterov=nesterov, steps=5)
        buf = np.zeros((12, 5))
        for _ in range(4):
            g = rng.standard_normal((12, 5))
            buf = buf + (1 - beta) * (g - buf)
            u = g + beta * (buf - g) if nesterov else buf
            expected = newton_schulz(u) * (12 / 5) ** 0.5
            np.testing.assert_allclose(muon.step(g), expected, atol=1e-12)
            np.testing.assert_allclose(muon.buffer, buf, atol=1e-14)
            np.testing.assert_allclose(muon.last_pre_orth, u, atol=1e-14)
        assert muon.n_steps == 4


def test_muon_scale_options_and_errors():
    G = np.random.default_rng(7).standard_normal((16, 4))
    base = newton_schulz(G)
    np.testing.assert_allclose(Muon(beta=0, scale="shape").step(G), 2.0 * base)   # sqrt(16/4)
    np.testing.assert_allclose(Muon(beta=0, scale="shape").step(G.T), base.T)     # wide: factor 1
    np.testing.assert_allclose(Muon(beta=0, scale=None).step(G), base)
    np.testing.assert_allclose(Muon(beta=0, scale="none").step(G), base)
    np.testing.assert_allclose(Muon(beta=0, scale=0.5).step(G), 0.5 * base)
    np.testing.assert_allclose(Muon(beta=0).step(-G), -Muon(beta=0).step(G))      # sign kept
    muon = Muon()
    muon.step(G)
    with pytest.raises(ValueError, match="one Muon per layer"):
        muon.step(G.T)
    muon.reset()
    assert muon.buffer is None and muon.n_steps == 0
    muon.step(G.T)                                                                 # fine after reset
    for kwargs in ({"beta": 1.0}, {"beta": -0.1}, {"steps": -1}, {"scale": "rms"}, {"scale": 0}):
        with pytest.raises(ValueError):
            Muon(**kwargs)
    with pytest.raises(ValueError, match="2-D"):
        Muon().step(np.ones(3))
