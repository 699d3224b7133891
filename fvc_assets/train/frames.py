"""Frames for the deep models: N evenly spaced frames per scaled clip, fitted to a square, decoded once and cached.

Every clip becomes a ``size x size`` square with one scale factor for both axes
(a stretched square would turn each video's aspect ratio into a distortion a
network could learn instead of the manipulation). Two fits (``fvc_core.train_settings.FRAME_FITS``):

- ``crop``: the shorter side scaled to ``size`` and the longer side cut to it,
  centred. No padding; a wide or tall video loses its sides.
- ``letterbox``: the longer side scaled to ``size``, the rest padded with black,
  centred, as stage 3 makes its clips. Nothing is lost, but the black bars show
  each video's aspect ratio, and on few videos the networks learnt the bars
  (docs/pipeline.md, "The demo profile and what it learns").

The cache holds one ``.npz`` per clip: ``frames`` (uint8, T x S x S x 3) and
``padding`` (top, bottom, left, right in pixels; zeros for a crop), named by
the clip, its file's size and mtime, so a re-scaled clip is decoded again and
every model and fold reuses the same decode. Files are written atomically.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from fvc_core.train_settings import check_frame_fit
from fvc_resources.atomic import atomic_path
from fvc_resources.video import probe, sample_frames

CACHE_LAYOUTS = {"letterbox": "lb1", "crop": "cc1"}  # folder suffix per fit (npz with padding)


def cache_file(cache_dir: Path, clip_id: str, clip_path: Path, frames: int, size: int, *, fit: str) -> Path:
    stat = clip_path.stat()
    stamp = hashlib.sha256(f"{clip_path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir / f"{frames}x{size}-{CACHE_LAYOUTS[check_frame_fit(fit)]}" / f"{clip_id}-{stamp}.npz"


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


def crop_geometry(width: int, height: int, size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """((scaled width, scaled height), (top, left) of the centred size x size square) of a width x height
    frame whose shorter side is scaled to size (one scale factor for both axes, whole pixels)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid frame size {width}x{height}")
    scale = size / min(width, height)
    scaled_w, scaled_h = max(size, round(width * scale)), max(size, round(height * scale))
    return (scaled_w, scaled_h), ((scaled_h - size) // 2, (scaled_w - size) // 2)


def decode_clip_frames(clip_path: Path, frames: int, size: int, *,
                       fit: str) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """((frames, size, size, 3) uint8 fitted to the square, padding); a clip with fewer frames repeats its
    last one."""
    check_frame_fit(fit)
    facts = probe(clip_path)
    width, height = (facts.height, facts.width) if facts.rotation in (90, 270) else (facts.width, facts.height)
    if fit == "crop":
        (content_w, content_h), (crop_top, crop_left) = crop_geometry(width, height, size)
        padding = (0, 0, 0, 0)
    else:
        (content_w, content_h), padding = letterbox_geometry(width, height, size)
    # PyAV scales in the stored orientation; upright=True turns the frames afterwards.
    dw, dh = (content_h, content_w) if facts.rotation in (90, 270) else (content_w, content_h)
    images = [f.image for f in sample_frames(clip_path, frames, width=dw, height=dh, upright=True)]
    if not images:
        raise ValueError(f"{clip_path}: no decodable frames")
    while len(images) < frames:
        images.append(images[-1])
    decoded = np.stack(images[:frames])
    if fit == "crop":
        return np.ascontiguousarray(decoded[:, crop_top:crop_top + size, crop_left:crop_left + size]), padding
    top, _, left, _ = padding
    out = np.zeros((frames, size, size, 3), np.uint8)
    out[:, top:top + content_h, left:left + content_w] = decoded
    return out, padding


def clip_frames(cache_dir: Path, clip_id: str, clip_path: Path, frames: int, size: int, *, fit: str) -> Path:
    """The cached frames file of one clip (decoding it first if needed)."""
    target = cache_file(cache_dir, clip_id, clip_path, frames, size, fit=fit)
    if not target.exists():
        array, padding = decode_clip_frames(clip_path, frames, size, fit=fit)
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
