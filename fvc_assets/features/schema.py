"""Stage 2 feature table: types always (raises), value sanity as a reported check."""

import polars as pl
import pandera.polars as pa

from fvc_assets.features.handcrafted import FRAME_FEATURES, HANDCRAFTED_FEATURES


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


# Plausible ranges for 8-bit video: generous, but NaN, infinity or a sign error fails them.
PLAUSIBLE_RANGES: dict[str, tuple[float, float]] = {
    "noise_energy": (0, 255.0**2 * 64),
    "noise_mean": (-255 * 8, 255 * 8),
    "noise_std": (0, 255 * 8),
    "dct_dc_mean": (-128 * 8, 128 * 8),
    "dct_dc_std": (0, 255 * 8),
    "dct_ac_mean": (0, 255 * 8),
    "dct_ac_std": (0, 255 * 8),
    "dct_ac_energy": (0, (255.0 * 8) ** 2),
    "laplacian_var": (0, (255.0 * 4) ** 2),
    "gradient_mean": (0, 255 * 6),
    "gradient_std": (0, 255 * 6),
    "boundary_inconsistency": (0, 100),
    "codec_bitrate": (1, 1e10),
    "codec_fps": (1, 1000),
    "codec_resolution": (64, 1e9),
}
assert set(PLAUSIBLE_RANGES) == set(HANDCRAFTED_FEATURES) and set(FRAME_FEATURES) <= set(PLAUSIBLE_RANGES)


def implausible_values(table: pl.DataFrame, ranges: dict[str, tuple[float, float]]) -> dict[str, list[str]]:
    """{clip_id: [problems]} for NaN, infinite or out-of-range values."""
    problems: dict[str, list[str]] = {}
    for column, (low, high) in ranges.items():
        bad = table.filter(~pl.col(column).is_finite() | (pl.col(column) < low) | (pl.col(column) > high))
        for clip, value in bad.select("clip_id", column).iter_rows():
            problems.setdefault(clip, []).append(f"{column}={value}")
    return problems


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


SCALED_PLAUSIBLE_RANGES: dict[str, tuple[float, float]] = {
    "edge_density": (0, 1),
    "texture_uniformity": (0, 1),
    "color_consistency_r": (0, 128),
    "color_consistency_g": (0, 128),
    "color_consistency_b": (0, 128),
    "compression_artifacts": (0, 100),
}
