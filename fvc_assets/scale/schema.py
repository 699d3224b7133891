"""Stage 3 table: one row per scaled clip."""

import pandera.polars as pa


class ScaledClipTable(pa.DataFrameModel):
    clip_id: str = pa.Field(unique=True)
    video_id: str
    method: str = pa.Field(isin=["letterbox", "autoencoder"])
    fallback: bool  # autoencoder asked for, letterbox used
    fallback_reason: str
    original_width: int = pa.Field(gt=0)
    original_height: int = pa.Field(gt=0)
    scaled_width: int = pa.Field(gt=0)
    scaled_height: int = pa.Field(gt=0)
    is_upscaled: bool
    is_downscaled: bool
    frames: int = pa.Field(gt=0)
    path: str

    class Config:
        strict = True
