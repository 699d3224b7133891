"""Synthetic stage-5 inputs: a catalog whose fakes differ in a few features, and real tiny clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from fvc_assets.train.catalog import FEATURE_COLUMNS
from fvc_assets.train.folds import assign_folds
from tests.conftest import encode_video

SIGNAL = ("noise_energy", "gradient_mean", "boundary_inconsistency")


def synthetic_catalog(n_groups: int = 40, clips_per_video: int = 3, shift: float = 2.5, seed: int = 0):
    """(catalog, folds): videos in groups of 1-3, clips = original + augmentations, signal in SIGNAL."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        label = "fake" if g % 2 else "real"
        for v in range(int(rng.integers(1, 4))):
            video = f"g{g}_v{v}"
            for c in range(clips_per_video):
                features = {name: float(rng.normal()) for name in FEATURE_COLUMNS}
                if label == "fake":
                    for name in SIGNAL:
                        features[name] += shift
                rows.append({"clip_id": f"{video}__{c}", "video_id": video, "dup_group": f"g{g}", "label": label,
                             "platform": "unknown", "augmentation": "original" if c == 0 else f"aug{c}",
                             "augmentation_idx": c - 1, **features})
    catalog = pl.DataFrame(rows)
    folds = assign_folds(catalog.unique("video_id", keep="first").select("video_id", "dup_group", "label", "platform"))
    return catalog, folds


def clip_catalog(root: Path, n_videos: int = 10, frames: int = 8) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Real encoded clips under ``root`` (fakes are brighter), as catalog rows with ``scaled_path``."""
    rows = []
    for i in range(n_videos):
        label = "fake" if i % 2 else "real"
        for c in range(2):
            rel = f"clips/v{i}_{c}.mp4"
            encode_video(root / rel, frames=frames, width=48, height=32, seed=100 * i + c)
            rows.append({"clip_id": f"v{i}__{c}", "video_id": f"v{i}", "dup_group": f"g{i}", "label": label,
                         "platform": "unknown", "augmentation": "original" if c == 0 else "aug",
                         "scaled_path": rel})
    catalog = pl.DataFrame(rows)
    folds = assign_folds(catalog.unique("video_id", keep="first").select("video_id", "dup_group", "label", "platform"))
    return catalog, folds
