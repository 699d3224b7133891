"""Child process of tests/test_crash_resume.py: trains one naive_cnn fold for 3 epochs.

The parent kills it with FVC_KILL_BEFORE_RENAME (a checkpoint or the model file) and runs it
again to see the fold resume. Arguments: data folder (catalog.parquet, folds.parquet, clips),
work folder, result JSON.
"""

import dataclasses
import json
import sys
from pathlib import Path

import polars as pl

from fvc_assets.train.fold_training import train_fold
from fvc_core.train_settings import DEMO_SETTINGS

SETTINGS = dataclasses.replace(DEMO_SETTINGS, frames=4, image_size=32, epochs=3, batch_size=4,
                               backbone="vit_tiny_patch16_224", device="cpu", threads=1)

if __name__ == "__main__":
    root, workdir, result = map(Path, sys.argv[1:4])
    outcome = train_fold("naive_cnn", 1, pl.read_parquet(root / "catalog.parquet"),
                         pl.read_parquet(root / "folds.parquet"), SETTINGS, root=root, workdir=workdir,
                         frames_cache=root / "cache", train_dir=workdir.parent, log=print)
    result.write_text(json.dumps({
        "resumed_from_epoch": outcome.info["resumed_from_epoch"],
        "clip_ids": outcome.predictions["clip_id"].to_list(),
        "scores": outcome.predictions["score"].to_list(),
    }))
