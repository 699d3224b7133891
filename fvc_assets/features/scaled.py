"""The 8 scaled-clip features of stage 4 (pure NumPy/OpenCV, no Dagster)."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from fvc_assets.features.handcrafted import aggregate, boundary_inconsistency

SCALED_FRAME_FEATURES = (
    "edge_density",
    "texture_uniformity",
    "color_consistency_r",
    "color_consistency_g",
    "color_consistency_b",
    "compression_artifacts",
)
SCALED_FEATURES = SCALED_FRAME_FEATURES + ("is_upscaled", "is_downscaled")


def scaled_frame_features(rgb: np.ndarray) -> dict[str, float]:
    """Per-frame features of one RGB uint8 frame (H, W, 3)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(grey, 100, 200)
    edge_density = float(np.count_nonzero(edges)) / edges.size
    # Local variance over 5x5 windows: E[x^2] - E[x]^2; uniformity = mean of 1 / (1 + variance).
    g = grey.astype(np.float64)
    mean = cv2.blur(g, (5, 5), borderType=cv2.BORDER_REFLECT_101)
    mean_sq = cv2.blur(g * g, (5, 5), borderType=cv2.BORDER_REFLECT_101)
    local_var = np.maximum(mean_sq - mean * mean, 0.0)
    texture_uniformity = float(np.mean(1.0 / (1.0 + local_var)))
    channels = rgb.reshape(-1, 3).astype(np.float64)
    std = channels.std(axis=0)
    return {
        "edge_density": edge_density,
        "texture_uniformity": texture_uniformity,
        "color_consistency_r": float(std[0]),
        "color_consistency_g": float(std[1]),
        "color_consistency_b": float(std[2]),
        "compression_artifacts": boundary_inconsistency(grey),
    }


def aggregate_scaled(frames: Iterable[np.ndarray]) -> tuple[dict[str, float], int]:
    """Mean of each scaled-frame feature over RGB frames; (features, number of frames)."""
    return aggregate(frames, scaled_frame_features)
