"""Stage 2 feature table: types always (raises), value sanity as a reported check."""

import pandera.polars as pa


class HandcraftedFeatureTable(pa.DataFrameModel):
    """Types and one row per clip; written only when this holds."""

    clip_id: str = pa.Field(unique=True)
    features_from: str = pa.Field(isin=["source", "clip"])
    features_path: str
    noise_energy: float
    noise_mean: float
    noise_std: float
    dct_dc_mean: float
    dct_dc_std: float
    dct_ac_mean: float
    dct_ac_std: float
    dct_ac_energy: float
    laplacian_var: float
    gradient_mean: float
    gradient_std: float
    boundary_inconsistency: float
    codec_bitrate: float
    codec_fps: float
    codec_resolution: float
    frames_sampled: int = pa.Field(gt=0)

    class Config:
        strict = True


class ScaledFeatureTable(pa.DataFrameModel):
    clip_id: str = pa.Field(unique=True)
    edge_density: float
    texture_uniformity: float
    color_consistency_r: float
    color_consistency_g: float
    color_consistency_b: float
    compression_artifacts: float
    is_upscaled: bool
    is_downscaled: bool
    frames_sampled: int = pa.Field(gt=0)

    class Config:
        strict = True
