"""Plausible value ranges of the feature tables, checked (and reported) after they are written.

Plain polars, no pandera: the assets' definitions import this at load time.
"""

import polars as pl

from fvc_assets.features.handcrafted import FRAME_FEATURES, HANDCRAFTED_FEATURES

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


SCALED_PLAUSIBLE_RANGES: dict[str, tuple[float, float]] = {
    "edge_density": (0, 1),
    "texture_uniformity": (0, 1),
    "color_consistency_r": (0, 128),
    "color_consistency_g": (0, 128),
    "color_consistency_b": (0, 128),
    "compression_artifacts": (0, 100),
}
