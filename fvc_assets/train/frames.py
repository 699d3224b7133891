"""Frames for the deep models: N evenly spaced frames per scaled clip, decoded once and cached.

The cache holds one ``.npy`` per clip (uint8, T x S x S x 3), named by the clip,
its file's size and mtime, so a re-scaled clip is decoded again and every
model and fold reuses the same decode. Files are written atomically.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from fvc_resources.atomic import atomic_path
from fvc_resources.video import sample_frames


def cache_file(cache_dir: Path, clip_id: str, clip_path: Path, frames: int, size: int) -> Path:
    stat = clip_path.stat()
    stamp = hashlib.sha256(f"{clip_path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir / f"{frames}x{size}" / f"{clip_id}-{stamp}.npy"


def decode_clip_frames(clip_path: Path, frames: int, size: int) -> np.ndarray:
    """(frames, size, size, 3) uint8; a clip with fewer frames repeats its last one."""
    images = [f.image for f in sample_frames(clip_path, frames, width=size, height=size)]
    if not images:
        raise ValueError(f"{clip_path}: no decodable frames")
    while len(images) < frames:
        images.append(images[-1])
    return np.stack(images[:frames])


def clip_frames(cache_dir: Path, clip_id: str, clip_path: Path, frames: int, size: int) -> Path:
    """The cached frames file of one clip (decoding it first if needed)."""
    target = cache_file(cache_dir, clip_id, clip_path, frames, size)
    if not target.exists():
        array = decode_clip_frames(clip_path, frames, size)
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, array)
    return target
