"""The columns of ``raw_video.parquet``, declared on ``raw_videos`` and written with these types
(an empty list stays a list of strings, not polars' inferred list of nulls)."""

import polars as pl

RAW_VIDEO_COLUMNS = pl.Schema({
    "video_id": pl.String, "path": pl.String, "relpath": pl.String, "sha256": pl.String,
    "container": pl.String, "codec": pl.String, "pix_fmt": pl.String,
    "width": pl.Int64, "height": pl.Int64, "fps": pl.Float64, "frame_count": pl.Int64, "duration": pl.Float64,
    "bitrate": pl.Int64, "rotation": pl.Int64, "has_audio": pl.Boolean, "size_bytes": pl.Int64,
    "label": pl.String, "label_source": pl.String, "label_note": pl.String,
    "cascade_ids": pl.List(pl.String), "video_urls": pl.List(pl.String),
    "platform": pl.String, "manipulation": pl.String, "dup_group": pl.String,
})
