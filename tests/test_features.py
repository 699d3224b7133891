"""Stage 2 kernels against straightforward reference implementations."""

import numpy as np
import pytest
from scipy import ndimage
from scipy.fft import dctn

from fvc_assets.features.handcrafted import (
    FRAME_FEATURES,
    aggregate,
    block_dct,
    boundary_inconsistency,
    frame_features,
)
from fvc_core.sampling import frames_to_sample

RNG = np.random.default_rng(0)
FRAME = RNG.integers(0, 256, (67, 93), dtype=np.uint8)  # not a multiple of 8 on purpose


def test_block_dct_matches_scipy_on_every_block():
    coeffs = block_dct(FRAME)
    by, bx = 67 // 8, 93 // 8
    assert coeffs.shape == (by, 8, bx, 8)
    for i in range(by):
        for j in range(bx):
            block = FRAME[8 * i : 8 * i + 8, 8 * j : 8 * j + 8].astype(np.float64) - 128
            np.testing.assert_allclose(coeffs[i, :, j, :], dctn(block, norm="ortho"), atol=1e-3)


def test_frame_features_match_a_reference_computation():
    f = frame_features(FRAME)
    g = FRAME.astype(np.float64)
    kernel = np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], float)
    residual = ndimage.convolve(g, kernel, mode="mirror")
    assert f["noise_mean"] == pytest.approx(residual.mean(), abs=1e-3)
    assert f["noise_std"] == pytest.approx(residual.std(), rel=1e-4)
    assert f["noise_energy"] == pytest.approx((residual**2).mean(), rel=1e-4)
    blocks = np.stack([
        dctn(g[8 * i : 8 * i + 8, 8 * j : 8 * j + 8] - 128, norm="ortho")
        for i in range(67 // 8) for j in range(93 // 8)
    ]).reshape(-1, 64)
    assert f["dct_dc_mean"] == pytest.approx(blocks[:, 0].mean(), rel=1e-4)
    assert f["dct_dc_std"] == pytest.approx(blocks[:, 0].std(), rel=1e-4)
    assert f["dct_ac_mean"] == pytest.approx(np.abs(blocks[:, 1:]).mean(), rel=1e-4)
    assert f["dct_ac_std"] == pytest.approx(blocks[:, 1:].std(), rel=1e-4)
    assert f["dct_ac_energy"] == pytest.approx((blocks[:, 1:] ** 2).mean(), rel=1e-4)
    lap = ndimage.convolve(g, np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float), mode="mirror")
    assert f["laplacian_var"] == pytest.approx(lap.var(), rel=1e-4)
    gx, gy = ndimage.sobel(g, axis=1, mode="mirror"), ndimage.sobel(g, axis=0, mode="mirror")
    assert f["gradient_mean"] == pytest.approx(np.hypot(gx, gy).mean(), rel=1e-3)


def test_flat_frame_has_no_texture():
    f = frame_features(np.full((32, 32), 77, np.uint8))
    for name in ("noise_energy", "noise_std", "dct_ac_mean", "dct_ac_energy", "laplacian_var", "gradient_mean"):
        assert f[name] == pytest.approx(0, abs=1e-6), name
    assert f["dct_dc_mean"] == pytest.approx((77 - 128) * 8, rel=1e-5)


def test_boundary_inconsistency_sees_the_8x8_grid():
    smooth_noise = RNG.integers(100, 110, (64, 64), dtype=np.uint8)
    assert boundary_inconsistency(smooth_noise) == pytest.approx(1.0, abs=0.15)
    blocky = np.kron(RNG.integers(0, 256, (8, 8)), np.ones((8, 8))).astype(np.uint8)
    blocky = np.clip(blocky.astype(int) + RNG.integers(-2, 3, blocky.shape), 0, 255).astype(np.uint8)
    assert boundary_inconsistency(blocky) > 5


def test_aggregate_is_the_mean_over_frames():
    frames = [RNG.integers(0, 256, (32, 40), dtype=np.uint8) for _ in range(3)]
    means, n = aggregate(iter(frames))
    assert n == 3 and set(means) == set(FRAME_FEATURES)
    per = [frame_features(f) for f in frames]
    for name in FRAME_FEATURES:
        assert means[name] == pytest.approx(np.mean([p[name] for p in per]))
    with pytest.raises(ValueError):
        aggregate(iter([]))


@pytest.mark.parametrize(
    "total, expected", [(1000, 50), (200, 20), (30, 5), (3, 3), (0, 5)]
)
def test_frames_to_sample_is_a_clamped_fraction(total, expected):
    assert frames_to_sample(total, 0.10, 5, 50) == expected


def test_fixed_sample_count_overrides_the_fraction():
    assert frames_to_sample(1000, 0.1, 5, 50, fixed=8) == 8
    assert frames_to_sample(4, 0.1, 5, 50, fixed=8) == 4


def test_strips_give_the_whole_frame_results():
    """frame_features works in 64-row strips; seams must not show (4 strips, odd sizes)."""
    frame = RNG.integers(0, 256, (203, 121), dtype=np.uint8)
    f = frame_features(frame)
    assert f["boundary_inconsistency"] == pytest.approx(boundary_inconsistency(frame), rel=1e-12)
    g = frame.astype(np.float64)
    residual = ndimage.convolve(g, np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], float), mode="mirror")
    assert f["noise_std"] == pytest.approx(residual.std(), rel=1e-12)
    gx, gy = ndimage.sobel(g, axis=1, mode="mirror"), ndimage.sobel(g, axis=0, mode="mirror")
    assert f["gradient_mean"] == pytest.approx(np.hypot(gx, gy).mean(), rel=1e-9)
    blocks = np.stack([
        dctn(g[8 * i : 8 * i + 8, 8 * j : 8 * j + 8] - 128, norm="ortho")
        for i in range(203 // 8) for j in range(121 // 8)
    ]).reshape(-1, 64)
    assert f["dct_ac_mean"] == pytest.approx(np.abs(blocks[:, 1:]).mean(), rel=1e-6)  # float32 DCT
    assert f["dct_dc_std"] == pytest.approx(blocks[:, 0].std(), rel=1e-6)
