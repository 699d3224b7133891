"""The columns of ``scaled.parquet`` (stage 3), declared on ``scaled_videos``; ``schema.ScaledClipTable``
validates the values (a test keeps the two equal)."""

import polars as pl

SCALED_CLIP_COLUMNS = pl.Schema({
    "clip_id": pl.String, "video_id": pl.String, "method": pl.String, "fallback": pl.Boolean,
    "fallback_reason": pl.String, "original_width": pl.Int64, "original_height": pl.Int64,
    "scaled_width": pl.Int64, "scaled_height": pl.Int64, "is_upscaled": pl.Boolean, "is_downscaled": pl.Boolean,
    "frames": pl.Int64, "path": pl.String,
})
