"""Frames for the deep models: N evenly spaced frames per scaled clip, letterboxed, decoded once and cached.

Every clip becomes a ``size x size`` square the way stage 3 makes its clips: the
longer side scaled to ``size`` with the aspect ratio kept (one scale factor for
both axes), the rest padded with black, centred. A stretched square would turn
each video's aspect ratio into a visible cue a network could learn instead of
the manipulation.

The cache holds one ``.npz`` per clip: ``frames`` (uint8, T x S x S x 3) and
``padding`` (top, bottom, left, right in pixels), named by the clip, its
file's size and mtime, so a re-scaled clip is decoded again and every model and
fold reuses the same decode. Files are written atomically.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from fvc_resources.atomic import atomic_path
from fvc_resources.video import probe, sample_frames

CACHE_LAYOUT = "lb1"  # letterboxed, npz with padding


def cache_file(cache_dir: Path, clip_id: str, clip_path: Path, frames: int, size: int) -> Path:
    stat = clip_path.stat()
    stamp = hashlib.sha256(f"{clip_path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir / f"{frames}x{size}-{CACHE_LAYOUT}" / f"{clip_id}-{stamp}.npz"


def letterbox_geometry(width: int, height: int, size: int) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """((content width, content height), (top, bottom, left, right) padding) of a width x height frame
    in a size x size square: one scale factor for both axes, rounded to whole pixels."""
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid frame size {width}x{height}")
    scale = size / max(width, height)
    content_w = max(1, min(size, round(width * scale)))
    content_h = max(1, min(size, round(height * scale)))
    top, left = (size - content_h) // 2, (size - content_w) // 2
    return (content_w, content_h), (top, size - content_h - top, left, size - content_w - left)


def decode_clip_frames(clip_path: Path, frames: int, size: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """((frames, size, size, 3) uint8 letterboxed, padding); a clip with fewer frames repeats its last one."""
    facts = probe(clip_path)
    width, height = (facts.height, facts.width) if facts.rotation in (90, 270) else (facts.width, facts.height)
    (content_w, content_h), padding = letterbox_geometry(width, height, size)
    top, _, left, _ = padding
    # PyAV scales in the stored orientation; upright=True turns the frames afterwards.
    dw, dh = (content_h, content_w) if facts.rotation in (90, 270) else (content_w, content_h)
    images = [f.image for f in sample_frames(clip_path, frames, width=dw, height=dh, upright=True)]
    if not images:
        raise ValueError(f"{clip_path}: no decodable frames")
    while len(images) < frames:
        images.append(images[-1])
    out = np.zeros((frames, size, size, 3), np.uint8)
    out[:, top:top + content_h, left:left + content_w] = np.stack(images[:frames])
    return out, padding


def clip_frames(cache_dir: Path, clip_id: str, clip_path: Path, frames: int, size: int) -> Path:
    """The cached frames file of one clip (decoding it first if needed)."""
    target = cache_file(cache_dir, clip_id, clip_path, frames, size)
    if not target.exists():
        array, padding = decode_clip_frames(clip_path, frames, size)
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, frames=array, padding=np.asarray(padding, np.int16))
    return target


def load_clip_frames(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(frames (T, S, S, 3) uint8, padding (top, bottom, left, right)) of a cached clip."""
    with np.load(path) as data:
        return data["frames"], data["padding"]


def clip_padding(path: Path) -> np.ndarray:
    """Padding (top, bottom, left, right) of a cached clip, without reading its frames."""
    with np.load(path) as data:
        return data["padding"]
