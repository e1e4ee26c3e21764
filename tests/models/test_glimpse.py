"""Glimpse sensor geometry on constructed images (neuro_pc.models.glimpse)."""
import numpy as np
import pytest

from neuro_pc.models.glimpse import (GlimpseGeometry, GlimpseSensor, extract_patch,
                                     pool_matrix)


def test_pool_matrix_block_average_and_identity():
    assert np.allclose(pool_matrix(4, 4), np.eye(4))
    P = pool_matrix(8, 4)
    assert np.allclose(P, np.kron(np.eye(4), [[0.5, 0.5]]))
    P = pool_matrix(6, 4)                       # fractional bins of 1.5 px
    assert np.allclose(P.sum(axis=1), 1.0)
    assert np.allclose(P[0], [2 / 3, 1 / 3, 0, 0, 0, 0])
    assert np.allclose(P[1], [0, 1 / 3, 2 / 3, 0, 0, 0])


def test_extract_patch_zero_pads_outside():
    img = np.arange(64, dtype=float).reshape(8, 8)
    p = extract_patch(img, -1, 6, 4)
    assert p.shape == (4, 4)
    assert np.all(p[0] == 0) and np.all(p[:, 2:] == 0)
    assert np.allclose(p[1:, :2], img[0:3, 6:8])


def test_views_are_centred_on_the_fixation():
    g = GlimpseGeometry.digits()
    views = g.views(4, 4)
    assert len(views) == g.n_streams == 6
    # 2x2 foveal grid of 4x4 overlapping by 2 px: a 6x6 region centred on (4, 4)
    assert views[:4] == [(1, 1, 4), (1, 3, 4), (3, 1, 4), (3, 3, 4)]
    assert views[4] == (1, 1, 6)      # parafovea 6x6
    assert views[5] == (0, 0, 8)      # periphery 8x8 = the whole image


def test_mnist_geometry_matches_the_paper():
    g = GlimpseGeometry.mnist()
    assert g.width == 6 * 64 + 2                           # g in R^384, plus a
    views = g.views(14, 14)
    assert [v[2] for v in views] == [8, 8, 8, 8, 16, 24]
    img = np.zeros((1, 28, 28))
    out = GlimpseSensor(g).glimpse(img, np.array([14, 14]))
    assert out.shape == (1, 386)


def test_single_pixel_lands_where_expected_and_action_code():
    g = GlimpseGeometry.digits()
    sensor = GlimpseSensor(g, center=False)
    img = np.zeros((1, 8, 8))
    img[0, 2, 5] = 1.0                       # row 2, column 5
    x = sensor.glimpse(img, np.array([4, 4]))
    streams, a = sensor.split(x)
    assert np.allclose(a, [[0.0, 0.0]])      # 2*[4,4]/8 - 1
    # fovea patch 1 (rows 1..4, cols 3..6): pixel at local (1, 2), pooling 4->4 is identity
    f1 = streams[1].reshape(4, 4)
    assert f1[1, 2] == 1.0 and f1.sum() == 1.0
    assert streams[0].sum() == 0.0           # patch 0 covers cols 1..4 only
    # periphery 8x8 pooled to 4x4: the pixel falls in cell (1, 2) with weight 1/4
    q = streams[5].reshape(4, 4)
    assert q[1, 2] == pytest.approx(0.25) and q.sum() == pytest.approx(0.25)
    # parafovea (rows 1..6, cols 1..6), 1.5-px bins: the pixel (local 1, 4) splits
    p = streams[4].reshape(4, 4)
    assert p.sum() == pytest.approx(1.0 / 2.25)
    corner = sensor.glimpse(img, np.array([2, 6]))
    assert np.allclose(sensor.split(corner)[1], [[2 * 2 / 8 - 1, 2 * 6 / 8 - 1]])


def test_patches_are_mean_centred():
    rng = np.random.default_rng(0)
    imgs = rng.random((5, 8, 8))
    sensor = GlimpseSensor()
    x = sensor.glimpse(imgs, np.array([3, 5]))
    streams, _ = sensor.split(x)
    for s in streams:
        assert np.allclose(s.mean(axis=1), 0.0)


def test_saccades_deterministic_and_in_range():
    sensor = GlimpseSensor()
    a = sensor.saccades(20, 10, seed=3)
    assert np.array_equal(a, sensor.saccades(20, 10, seed=3))
    assert not np.array_equal(a, sensor.saccades(20, 10, seed=4))
    assert a.min() >= 2 and a.max() <= 6 and a.shape == (20, 10, 2)
    fixed = sensor.fixed_saccades(4, 10, seed=3)
    assert np.all(fixed == fixed[:1])
    seq = sensor.sequence(np.zeros((4, 64)), fixed)
    assert seq.shape == (4, 10, sensor.geometry.width)


def test_geometry_rejects_a_non_square_fovea_grid():
    with pytest.raises(ValueError, match="square"):
        GlimpseGeometry(n_fovea=3)
