"""The columns of the feature tables (stages 2 and 4), declared on their assets; ``schema`` validates the
values (a test keeps the two equal)."""

import polars as pl

from fvc_assets.features.handcrafted import HANDCRAFTED_FEATURES
from fvc_assets.features.scaled import SCALED_FRAME_FEATURES

HANDCRAFTED_COLUMNS = pl.Schema({
    "clip_id": pl.String, "features_from": pl.String, "features_path": pl.String,
    **dict.fromkeys(HANDCRAFTED_FEATURES, pl.Float64), "frames_sampled": pl.Int64,
})
SCALED_FEATURE_COLUMNS = pl.Schema({
    "clip_id": pl.String, **dict.fromkeys(SCALED_FRAME_FEATURES, pl.Float64),
    "is_upscaled": pl.Boolean, "is_downscaled": pl.Boolean, "frames_sampled": pl.Int64,
})
