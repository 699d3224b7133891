"""The 15 handcrafted forensic features of stage 2 (pure NumPy/OpenCV, no Dagster).

Twelve are computed per grey frame and averaged over the sampled frames; three
(bitrate, fps, resolution) come from the clip's container. Kernels share their
intermediates and run in OpenCV on float32, and the 8x8 block DCT is two
batched matrix products over all blocks at once (no Python loop per block).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import cv2
import numpy as np

FRAME_FEATURES = (
    "noise_energy",
    "noise_mean",
    "noise_std",
    "dct_dc_mean",
    "dct_dc_std",
    "dct_ac_mean",
    "dct_ac_std",
    "dct_ac_energy",
    "laplacian_var",
    "gradient_mean",
    "gradient_std",
    "boundary_inconsistency",
)
CODEC_FEATURES = ("codec_bitrate", "codec_fps", "codec_resolution")
HANDCRAFTED_FEATURES = FRAME_FEATURES + CODEC_FEATURES

HIGH_PASS = np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], np.float32)


def _dct_matrix(n: int = 8) -> np.ndarray:
    """Orthonormal DCT-II matrix: coefficients = D @ block @ D.T."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d.astype(np.float32)


DCT8 = _dct_matrix(8)


def block_dct(grey: np.ndarray) -> np.ndarray:
    """8x8 DCT of every full block, shape (blocks_y, 8, blocks_x, 8): coefficient (u, v) of
    block (i, j) is at [i, u, j, v].

    Two contiguous batched matrix products (down block columns, then along block
    rows), with no transpose copy into (blocks, 8, 8).
    """
    h, w = (grey.shape[0] // 8) * 8, (grey.shape[1] // 8) * 8
    x = grey[:h, :w].astype(np.float32)
    x -= 128.0
    cols = DCT8 @ x.reshape(h // 8, 8, w)  # (by, 8, w)
    return cols.reshape(h // 8, 8, w // 8, 8) @ DCT8.T


def boundary_inconsistency(grey: np.ndarray) -> float:
    """Mean absolute step across 8x8 block boundaries over the mean step inside blocks.

    About 1 for content that ignores the grid; above 1 where block coding left seams.
    """
    dx = cv2.absdiff(grey[:, 1:], grey[:, :-1])  # step between column j and j+1, uint8 exact
    dy = cv2.absdiff(grey[1:, :], grey[:-1, :])
    bx, by = dx[:, 7::8], dy[7::8, :]
    boundary = float(bx.sum(dtype=np.int64) + by.sum(dtype=np.int64))
    n_boundary = bx.size + by.size
    inside = float(cv2.sumElems(dx)[0] + cv2.sumElems(dy)[0]) - boundary
    n_inside = dx.size + dy.size - n_boundary
    if n_boundary == 0 or inside <= 0:
        return 1.0
    return (boundary / n_boundary) / (inside / n_inside)


def _exact_moments(values: np.ndarray) -> tuple[float, float, int]:
    """(sum, sum of squares, count) of an integer image. OpenCV sums integers into
    doubles exactly (every partial sum stays below 2**53), so any order gives the same bits."""
    return float(cv2.sumElems(values)[0]), float(cv2.norm(values, cv2.NORM_L2SQR)), values.size


def _stats(total: float, squares: float, n: int) -> tuple[float, float, float]:
    """(mean, std, mean of squares)."""
    mean = total / n
    mean_sq = squares / n
    return mean, float(np.sqrt(max(0.0, mean_sq - mean * mean))), mean_sq


def frame_features(grey: np.ndarray) -> dict[str, float]:
    """The 12 per-frame features of one grey uint8 frame (H, W), H and W >= 8.

    The high-pass residual, the Laplacian and the Sobel gradients of an 8-bit
    frame are integers, so they are computed as int16 and their sums are exact;
    only the DCT and the gradient magnitude need floats.
    """
    if grey.ndim != 2 or grey.shape[0] < 8 or grey.shape[1] < 8:
        raise ValueError(f"need a grey frame of at least 8x8, got shape {grey.shape}")
    residual = cv2.filter2D(grey, cv2.CV_16S, HIGH_PASS, borderType=cv2.BORDER_REFLECT_101)
    noise_mean, noise_std, noise_energy = _stats(*_exact_moments(residual))

    # Block DCT. Sum of squares of all coefficients = sum of squares of the pixels
    # (orthonormal transform), which is an exact integer; the DC terms are few.
    h8, w8 = (grey.shape[0] // 8) * 8, (grey.shape[1] // 8) * 8
    crop = grey[:h8, :w8]
    coeffs = block_dct(crop)
    dc = coeffs[:, 0, :, 0].astype(np.float64)
    n_dc = dc.size
    n_ac = coeffs.size - n_dc
    pixel_sum, pixel_sq, n_px = _exact_moments(crop)
    centred_sq = pixel_sq - 256.0 * pixel_sum + 128.0 * 128.0 * n_px  # sum of (g - 128)^2
    dc_sum, dc_sq = float(dc.sum()), float(np.square(dc).sum())
    all_sum = float(coeffs.sum())
    dc_mean, dc_std, _ = _stats(dc_sum, dc_sq, n_dc)
    ac_mean_signed = (all_sum - dc_sum) / n_ac
    ac_energy = (centred_sq - dc_sq) / n_ac
    ac_std = float(np.sqrt(max(0.0, ac_energy - ac_mean_signed * ac_mean_signed)))
    ac_abs_mean = (float(np.abs(coeffs).sum()) - float(np.abs(dc).sum())) / n_ac

    laplacian = cv2.Laplacian(grey, cv2.CV_16S, ksize=1)
    _, lap_std, _ = _stats(*_exact_moments(laplacian))

    gx, gy = cv2.spatialGradient(grey)  # Sobel 3x3, int16
    gx_sum, gx_sq, n = _exact_moments(gx)
    _, gy_sq, _ = _exact_moments(gy)
    # |g|^2 <= 2 * 1020^2 < 2^24, so float32 holds it exactly and sqrt rounds once.
    # (Not cv2.magnitude: its fused multiply-adds gave different last bits run to run.)
    squared = cv2.add(cv2.multiply(gx, gx, dtype=cv2.CV_32F), cv2.multiply(gy, gy, dtype=cv2.CV_32F))
    magnitude = cv2.sqrt(squared)
    grad_mean, grad_std, _ = _stats(float(magnitude.sum()), gx_sq + gy_sq, n)

    return {
        "noise_energy": noise_energy,
        "noise_mean": noise_mean,
        "noise_std": noise_std,
        "dct_dc_mean": dc_mean,
        "dct_dc_std": dc_std,
        "dct_ac_mean": ac_abs_mean,
        "dct_ac_std": ac_std,
        "dct_ac_energy": ac_energy,
        "laplacian_var": lap_std * lap_std,
        "gradient_mean": grad_mean,
        "gradient_std": grad_std,
        "boundary_inconsistency": boundary_inconsistency(grey),
    }


def aggregate(
    frames: Iterable[np.ndarray], features_of: Callable[[np.ndarray], dict[str, float]] | None = None
) -> tuple[dict[str, float], int]:
    """Mean of each per-frame feature over the frames; (features, number of frames).

    ``features_of`` is the per-frame function (default: the 12 stage-2 features).
    """
    features_of = features_of or frame_features
    totals: dict[str, float] = {}
    n = 0
    for frame in frames:
        for name, value in features_of(frame).items():
            totals[name] = totals.get(name, 0.0) + value
        n += 1
    if n == 0:
        raise ValueError("no frames to compute features on")
    return {name: total / n for name, total in totals.items()}, n


def codec_features(bitrate: float, fps: float, width: int, height: int) -> dict[str, float]:
    return {"codec_bitrate": float(bitrate), "codec_fps": float(fps), "codec_resolution": float(width * height)}


def frames_to_sample(total_frames: int, fraction: float, min_frames: int, max_frames: int,
                     fixed: int | None = None) -> int:
    """Frames to sample from a clip: a fraction clamped to [min, max], or a fixed count; never more than exist."""
    wanted = fixed if fixed is not None else int(round(total_frames * fraction))
    wanted = max(min_frames, min(max_frames, wanted)) if fixed is None else wanted
    return max(1, min(wanted, total_frames)) if total_frames > 0 else max(1, wanted)
