"""The columns of ``clips.parquet`` (stage 1's clip table), declared on ``augmented_videos``;
``schema.ClipTable`` validates the values (a test keeps the two equal)."""

import polars as pl

CLIP_COLUMNS = pl.Schema({
    "clip_id": pl.String, "video_id": pl.String, "augmentation_idx": pl.Int64, "augmentation": pl.String,
    "params": pl.String, "label": pl.String, "dup_group": pl.String, "frames": pl.Int64, "fps": pl.Float64,
    "width": pl.Int64, "height": pl.Int64, "path": pl.String,
})
