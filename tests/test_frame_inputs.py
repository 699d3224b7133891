"""Deep models' inputs keep the aspect ratio: cropped or letterboxed into the square, never stretched."""

import numpy as np
import pytest

from fvc_assets.train.frames import (cache_file, clip_frames, crop_geometry, decode_clip_frames, letterbox_geometry,
                                     load_clip_frames)
from fvc_core.train_settings import TrainSettings
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


def bright_rows_cols(image):
    """Indices of the rows and of the columns that hold a bright (white square) pixel."""
    bright = image[..., 0] > 200
    return np.flatnonzero(bright.any(axis=1)), np.flatnonzero(bright.any(axis=0))


def bright_box(image):
    rows, cols = bright_rows_cols(image)
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.mark.parametrize("width,height", [(320, 180), (180, 320)])
def test_a_square_stays_square_and_the_rest_is_padding(tmp_path, width, height):
    clip = square_clip(tmp_path / f"{width}x{height}.mp4", width, height, side=100)
    frames, (top, bottom, left, right) = decode_clip_frames(clip, 4, SIZE, fit="letterbox")
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
    cached = clip_frames(tmp_path / "cache", "wide__orig", clip, 4, SIZE, fit="letterbox")
    frames, padding = load_clip_frames(cached)
    assert frames.shape == (4, SIZE, SIZE, 3) and tuple(padding) == (14, 14, 0, 0)


@pytest.mark.parametrize("width,height", [(320, 180), (180, 320)])
def test_a_crop_keeps_the_square_square_and_has_no_padding(tmp_path, width, height):
    clip = square_clip(tmp_path / f"{width}x{height}.mp4", width, height, side=100)
    frames, padding = decode_clip_frames(clip, 4, SIZE, fit="crop")
    assert frames.shape == (4, SIZE, SIZE, 3) and padding == (0, 0, 0, 0)
    box_h, box_w = bright_box(frames[0])
    assert abs(box_h - box_w) <= 1, f"the square became {box_w}x{box_h}: resampled anisotropically"
    assert box_h == pytest.approx(100 * SIZE / min(width, height), abs=1.5)  # the shorter side fills the square
    rows, cols = bright_rows_cols(frames[0])
    assert abs((rows[0] + rows[-1]) / 2 - (SIZE - 1) / 2) <= 1 and abs((cols[0] + cols[-1]) / 2 - (SIZE - 1) / 2) <= 1
    assert frames.min() > 50  # no black bars: every pixel is the clip's


def test_crop_geometry_cuts_the_longer_side_only():
    assert crop_geometry(1920, 1080, 256) == ((455, 256), (0, 99))
    assert crop_geometry(1080, 1920, 256) == ((256, 455), (99, 0))
    assert crop_geometry(500, 500, 256) == ((256, 256), (0, 0))


def test_each_fit_has_its_own_cache_and_an_unknown_fit_is_refused(tmp_path):
    clip = square_clip(tmp_path / "wide.mp4", 320, 180, side=60)
    crop, box = (cache_file(tmp_path, "c", clip, 4, SIZE, fit=fit) for fit in ("crop", "letterbox"))
    assert crop != box
    with pytest.raises(ValueError, match="frame_fit 'stretch'"):
        clip_frames(tmp_path / "cache", "wide__orig", clip, 4, SIZE, fit="stretch")
    with pytest.raises(ValueError, match="frame_fit 'stretch'"):
        TrainSettings(frame_fit="stretch")


def test_models_saved_before_the_fit_setting_read_letterboxed_unflipped_frames():
    earlier = TrainSettings.from_saved({"epochs": 3, "image_size": 32})
    assert (earlier.frame_fit, earlier.flip_augment, earlier.epochs) == ("letterbox", False, 3)
    now = TrainSettings.from_saved({"epochs": 3, "frame_fit": "crop", "flip_augment": True})
    assert (now.frame_fit, now.flip_augment) == ("crop", True)
    assert (TrainSettings().frame_fit, TrainSettings().flip_augment) == ("crop", True)


def test_random_flips_turn_every_frame_of_a_clip_alike_and_reach_all_eight_symmetries():
    import torch

    from fvc_assets.train.models.deep import random_flips

    # Clip b: 3 frames, each the same asymmetric pattern plus its frame index, so a flip is recognisable.
    base = torch.arange(SIZE * SIZE, dtype=torch.float32).view(SIZE, SIZE)
    clips = torch.stack([torch.stack([(base + t).expand(3, SIZE, SIZE) for t in range(3)]) for _ in range(64)])
    flipped = random_flips(clips, torch.Generator().manual_seed(0))
    assert flipped.shape == clips.shape
    symmetries = {k: s(base) for k, s in enumerate([
        lambda m: m, lambda m: m.flip(-1), lambda m: m.flip(-2), lambda m: m.flip(-1).flip(-2),
        lambda m: m.T, lambda m: m.flip(-1).T, lambda m: m.flip(-2).T, lambda m: m.flip(-1).flip(-2).T])}
    seen = set()
    for clip in flipped:
        ops = [next(k for k, s in symmetries.items() if torch.equal(frame[0] - t, s)) for t, frame in enumerate(clip)]
        assert len(set(ops)) == 1, f"the frames of one clip were turned differently: {ops}"
        assert all(torch.equal(frame[c], frame[0]) for frame in clip for c in (1, 2))
        seen.add(ops[0])
    assert seen == set(range(8))
    again = random_flips(clips, torch.Generator().manual_seed(0))
    assert torch.equal(again, flipped)  # seeded: a resumed epoch flips as the first try did
