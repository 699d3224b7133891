"""Deep models' inputs keep the aspect ratio: letterboxed into the square, never stretched."""

import numpy as np
import pytest

from fvc_assets.train.frames import clip_frames, decode_clip_frames, letterbox_geometry, load_clip_frames
from fvc_resources.video import ClipWriter

SIZE = 64


def square_clip(path, width, height, side):
    """A grey clip with a white square of ``side`` pixels in its centre."""
    frame = np.full((height, width, 3), 96, np.uint8)
    top, left = (height - side) // 2, (width - side) // 2
    frame[top:top + side, left:left + side] = 255
    with ClipWriter(path, 25.0) as writer:
        writer.write(np.stack([frame] * 6))
        writer.close()
    return path


def bright_box(image):
    rows = np.flatnonzero((image[..., 0] > 200).any(axis=1))
    cols = np.flatnonzero((image[..., 0] > 200).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.mark.parametrize("width,height", [(320, 180), (180, 320)])
def test_a_square_stays_square_and_the_rest_is_padding(tmp_path, width, height):
    clip = square_clip(tmp_path / f"{width}x{height}.mp4", width, height, side=100)
    frames, (top, bottom, left, right) = decode_clip_frames(clip, 4, SIZE)
    assert frames.shape == (4, SIZE, SIZE, 3)
    box_h, box_w = bright_box(frames[0])
    assert abs(box_h - box_w) <= 1, f"the square became {box_w}x{box_h}: resampled anisotropically"
    assert box_h == pytest.approx(100 * SIZE / max(width, height), abs=1.5)
    content_h, content_w = SIZE - top - bottom, SIZE - left - right
    assert content_w / content_h == pytest.approx(width / height, rel=0.05)
    assert max(content_h, content_w) == SIZE
    padded = np.ones((SIZE, SIZE), bool)
    padded[top:SIZE - bottom, left:SIZE - right] = False
    assert padded.sum() > 0 and frames[:, padded].max() == 0  # padding is black
    assert frames[:, ~padded].min() > 50  # every content pixel is the clip's (grey or white)


def test_geometry_keeps_one_scale_factor():
    (w, h), (top, bottom, left, right) = letterbox_geometry(1920, 1080, 256)
    assert (w, h) == (256, 144) and (top, bottom, left, right) == (56, 56, 0, 0)
    (w, h), padding = letterbox_geometry(1080, 1920, 256)
    assert (w, h) == (144, 256) and padding == (0, 0, 56, 56)
    assert letterbox_geometry(500, 500, 256) == ((256, 256), (0, 0, 0, 0))


def test_the_cache_records_the_padding(tmp_path):
    clip = square_clip(tmp_path / "wide.mp4", 320, 180, side=60)
    cached = clip_frames(tmp_path / "cache", "wide__orig", clip, 4, SIZE)
    frames, padding = load_clip_frames(cached)
    assert frames.shape == (4, SIZE, SIZE, 3) and tuple(padding) == (14, 14, 0, 0)
