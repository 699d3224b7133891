"""Stage 3 sizes and the letterbox method (pure code, no Dagster)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from fvc_resources.video import ClipWriter, iter_chunks, probe


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


def scale_clip(
    source: str | Path,
    target_path: str | Path,
    target: int = 256,
    frame_transform: Callable[[np.ndarray], np.ndarray] | None = None,
    chunk_frames: int = 32,
) -> dict:
    """Write ``source`` scaled to ``target`` on its longer side; returns the clip's size facts.

    Resizing happens inside PyAV while decoding (no RGB round trip at full size).
    ``frame_transform`` (e.g. an autoencoder) runs on the scaled chunks.
    """
    facts = probe(source)
    width, height = facts.width, facts.height
    if facts.rotation in (90, 270):
        width, height = height, width
    sw, sh = scaled_size(width, height, target)
    # PyAV resizes in stored orientation, before the upright rotation.
    dw, dh = (sh, sw) if facts.rotation in (90, 270) else (sw, sh)
    chunks: Iterator[np.ndarray] = iter_chunks(
        source, chunk_frames, width=dw, height=dh, upright=True,
        interpolation=interpolation_for(width, height, target),
    )
    with ClipWriter(target_path, facts.fps or 25.0) as writer:
        for chunk in chunks:
            writer.write(frame_transform(chunk) if frame_transform else chunk)
        written = writer.close()
    return {
        "original_width": width,
        "original_height": height,
        "scaled_width": written.width,
        "scaled_height": written.height,
        "is_upscaled": max(width, height) < target,
        "is_downscaled": max(width, height) > target,
        "frames": written.frames,
    }
