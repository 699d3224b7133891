"""Stage 3 sizes and the letterbox method (pure code, no Dagster)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fvc_resources.video import ClipWriter, OpenedVideo, batched_arrays, prefetched, upright


def scaled_size(width: int, height: int, target: int = 256) -> tuple[int, int]:
    """Longer side = ``target``, aspect ratio kept, the shorter side rounded to an even number (>= 2)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid frame size {width}x{height}")
    if width >= height:
        return target, max(2, int(round(height * target / width / 2)) * 2)
    return max(2, int(round(width * target / height / 2)) * 2), target


def interpolation_for(width: int, height: int, target: int) -> str:
    """Area averaging when shrinking (no aliasing); bicubic when growing."""
    return "AREA" if max(width, height) >= target else "BICUBIC"


class ResizePlan(NamedTuple):
    """How stage 3 resizes a video: its upright size, the size FFmpeg resizes each stored
    (not yet rotated) frame to, and the interpolation."""

    width: int
    height: int
    stored_width: int
    stored_height: int
    interpolation: str
    target: int

    @property
    def is_upscaled(self) -> bool:
        return max(self.width, self.height) < self.target

    @property
    def is_downscaled(self) -> bool:
        return max(self.width, self.height) > self.target


def resize_plan(stored_width: int, stored_height: int, rotation: int, target: int) -> ResizePlan:
    width, height = upright(stored_width, stored_height, rotation)
    # FFmpeg resizes in stored orientation, before the upright rotation.
    dw, dh = upright(*scaled_size(width, height, target), rotation)
    return ResizePlan(width, height, dw, dh, interpolation_for(width, height, target), target)


def scale_clip(
    source: str | Path,
    target_path: str | Path,
    target: int = 256,
    frame_transform: Callable[[np.ndarray], np.ndarray] | None = None,
    chunk_frames: int = 32,
) -> dict:
    """Write ``source`` scaled to ``target`` on its longer side; returns the clip's size facts.

    Resizing happens inside FFmpeg while decoding. Plain letterbox of an upright source
    never leaves FFmpeg's frames (decode, resize, encode, as `ffmpeg -vf scale` does);
    ``frame_transform`` (e.g. an autoencoder) or a display rotation takes RGB chunks.
    """
    with OpenedVideo(source) as video:
        plan = resize_plan(video.width, video.height, video.rotation, target)
        dw, dh, interpolation = plan.stored_width, plan.stored_height, plan.interpolation
        with ClipWriter(target_path, video.fps or 25.0) as writer:
            if frame_transform is None and video.rotation == 0:
                # Three stages on three threads: decode, resize, encode (each about as long at 480p).
                resized = (frame.reformat(width=dw, height=dh, format="yuv420p", interpolation=interpolation)
                           for frame in prefetched(video.frames()))
                for frame in prefetched(resized):
                    writer.write_frame(frame)
            else:
                # Decoding the next chunk overlaps the transform (the autoencoder) of this one.
                for chunk in prefetched(batched_arrays(video.frames(), chunk_frames, width=dw, height=dh,
                                                       interpolation=interpolation, upright=True), depth=2):
                    writer.write(frame_transform(chunk) if frame_transform else chunk)
            written = writer.close()
    return {
        "original_width": plan.width,
        "original_height": plan.height,
        "scaled_width": written.width,
        "scaled_height": written.height,
        "is_upscaled": plan.is_upscaled,
        "is_downscaled": plan.is_downscaled,
        "frames": written.frames,
    }
