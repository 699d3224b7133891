"""Stage 3 sizes and stage 4 kernels."""

import cv2
import numpy as np
import pytest

from fvc_assets.features.scaled import SCALED_FRAME_FEATURES, aggregate_scaled, scaled_frame_features
from fvc_assets.scale.letterbox import interpolation_for, scale_clip, scaled_size
from fvc_resources.video import probe
from tests.conftest import encode_video


@pytest.mark.parametrize(
    "size, expected",
    [((1920, 1080), (256, 144)), ((720, 1280), (144, 256)), ((480, 480), (256, 256)),
     ((169, 97), (256, 146)), ((853, 481), (256, 144)), ((100, 3000), (8, 256))],
)
def test_scaled_size_keeps_aspect_with_even_sides(size, expected):
    assert scaled_size(*size) == expected
    assert scaled_size(*size, target=320)[0 if size[0] >= size[1] else 1] == 320


def test_interpolation_shrinks_by_area_and_grows_bicubic():
    assert interpolation_for(1920, 1080, 256) == "AREA"
    assert interpolation_for(160, 120, 256) == "BICUBIC"


def test_scale_clip_writes_the_target_size_and_flags(tmp_path):
    big = encode_video(tmp_path / "big.mp4", frames=5, width=640, height=360)
    facts = scale_clip(big, tmp_path / "out.mp4")
    assert (facts["scaled_width"], facts["scaled_height"], facts["frames"]) == (256, 144, 5)
    assert facts["is_downscaled"] and not facts["is_upscaled"]
    written = probe(tmp_path / "out.mp4")
    assert (written.width, written.height) == (256, 144)


def test_scaled_frame_features_match_references():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    f = scaled_frame_features(rgb)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(float)
    assert f["edge_density"] == pytest.approx((cv2.Canny(grey.astype(np.uint8), 100, 200) > 0).mean())
    for i, c in enumerate("rgb"):
        assert f[f"color_consistency_{c}"] == pytest.approx(rgb[..., i].astype(float).std())
    # Texture uniformity against a direct 5x5 window computation at one interior pixel set.
    pad = np.pad(grey, 2, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(pad, (5, 5))
    expected = np.mean(1.0 / (1.0 + windows.var(axis=(-1, -2))))
    assert f["texture_uniformity"] == pytest.approx(expected, rel=1e-6)


def test_flat_frames_are_uniform_without_edges():
    f = scaled_frame_features(np.full((32, 32, 3), 90, np.uint8))
    assert f["edge_density"] == 0 and f["texture_uniformity"] == pytest.approx(1.0)
    assert f["color_consistency_r"] == 0
    means, n = aggregate_scaled(iter([np.full((16, 16, 3), v, np.uint8) for v in (10, 200)]))
    assert n == 2 and set(means) == set(SCALED_FRAME_FEATURES)
