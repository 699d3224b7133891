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


def _grid_steps(grey: np.ndarray, y0: int, y1: int) -> tuple[float, int, float, int]:
    """(sum and count of absolute steps across the 8x8 grid, sum and count of all steps) for rows
    [y0, y1): steps between columns inside those rows, and between rows from row y0 - 1 on, so
    strips that tile a frame count every step exactly once."""
    dx = cv2.absdiff(grey[y0:y1, 1:], grey[y0:y1, :-1])  # step between column j and j+1, uint8 exact
    bx = dx[:, 7::8]
    boundary, n_boundary = float(bx.sum(dtype=np.int64)), bx.size
    steps, n_steps = cv2.sumElems(dx)[0], dx.size
    a0 = max(0, y0 - 1)
    if y1 - a0 >= 2:
        rows = grey[a0:y1]
        dy = cv2.absdiff(rows[1:], rows[:-1])  # pair i joins rows a0+i and a0+i+1
        by = dy[(7 - a0) % 8 :: 8]
        boundary += float(by.sum(dtype=np.int64))
        n_boundary += by.size
        steps += cv2.sumElems(dy)[0]
        n_steps += dy.size
    return boundary, n_boundary, steps, n_steps


def _grid_ratio(boundary: float, n_boundary: int, steps: float, n_steps: int) -> float:
    inside, n_inside = steps - boundary, n_steps - n_boundary
    if n_boundary == 0 or inside <= 0:
        return 1.0
    return (boundary / n_boundary) / (inside / n_inside)


def boundary_inconsistency(grey: np.ndarray) -> float:
    """Mean absolute step across 8x8 block boundaries over the mean step inside blocks.

    About 1 for content that ignores the grid; above 1 where block coding left seams.
    """
    return _grid_ratio(*_grid_steps(grey, 0, grey.shape[0]))


def _stats(total: float, squares: float, n: int) -> tuple[float, float, float]:
    """(mean, std, mean of squares)."""
    mean = total / n
    mean_sq = squares / n
    return mean, float(np.sqrt(max(0.0, mean_sq - mean * mean))), mean_sq


STRIP_ROWS = 64  # rows per pass: every intermediate of a strip stays in cache (a multiple of 8)


class _Sums:
    """Running totals over the strips of one frame; integer totals are exact."""

    def __init__(self) -> None:
        self.res = [0.0, 0.0]
        self.lap = [0.0, 0.0]
        self.grad_sq = 0.0
        self.grad_sum = 0.0
        self.px = [0.0, 0.0]
        self.coeff_sum = 0.0
        self.coeff_abs = 0.0
        self.dc: list[np.ndarray] = []
        self.grid = [0.0, 0, 0.0, 0]  # boundary sum, boundary count, step sum, step count


def _add_strip(grey: np.ndarray, y0: int, y1: int, w8: int, sums: _Sums) -> None:
    """Accumulate rows [y0, y1) of ``grey``; filters see one halo row each side, as on the whole frame."""
    h = grey.shape[0]
    a0, a1 = max(0, y0 - 1), min(h, y1 + 1)
    block = grey[a0:a1]
    top, rows = y0 - a0, y1 - y0

    residual = cv2.filter2D(block, cv2.CV_16S, HIGH_PASS, borderType=cv2.BORDER_REFLECT_101)[top : top + rows]
    sums.res[0] += cv2.sumElems(residual)[0]
    sums.res[1] += cv2.norm(residual, cv2.NORM_L2SQR)
    laplacian = cv2.Laplacian(block, cv2.CV_16S, ksize=1)[top : top + rows]
    sums.lap[0] += cv2.sumElems(laplacian)[0]
    sums.lap[1] += cv2.norm(laplacian, cv2.NORM_L2SQR)
    gx, gy = cv2.spatialGradient(block)
    gx, gy = gx[top : top + rows], gy[top : top + rows]
    sums.grad_sq += cv2.norm(gx, cv2.NORM_L2SQR) + cv2.norm(gy, cv2.NORM_L2SQR)
    # |g|^2 <= 2 * 1020^2 < 2^24: exact in float32, and sqrt rounds once. (Not cv2.magnitude:
    # its fused multiply-adds gave different last bits run to run.)
    squared = cv2.add(cv2.multiply(gx, gx, dtype=cv2.CV_32F), cv2.multiply(gy, gy, dtype=cv2.CV_32F))
    sums.grad_sum += float(cv2.sqrt(squared).sum(dtype=np.float64))

    # Block DCT of the strip's full 8x8 blocks. Sum of squared coefficients = sum of squared
    # (pixel - 128), exact; DC terms are few and kept.
    b1 = y0 + ((min(y1, (h // 8) * 8) - y0) // 8) * 8
    if b1 > y0 and w8:
        crop = grey[y0:b1, :w8]
        sums.px[0] += cv2.sumElems(crop)[0]
        sums.px[1] += cv2.norm(crop, cv2.NORM_L2SQR)
        coeffs = block_dct(crop)
        # The orthonormal DC term is (block sum - 64 * 128) / 8: exact from integer sums, so the AC
        # energy (all energy minus DC energy) carries no float32 rounding of the DC (BLAS kernels
        # differ between CPUs; a flat frame's AC energy is exactly 0 on all of them).
        block_sums = crop.reshape(crop.shape[0] // 8, 8, w8 // 8, 8).sum(axis=(1, 3), dtype=np.int64)
        sums.dc.append(((block_sums - 64 * 128) / 8.0).ravel())
        sums.coeff_sum += float(coeffs.sum(dtype=np.float64))
        sums.coeff_abs += float(np.abs(coeffs).sum(dtype=np.float64))

    sums.grid = [total + part for total, part in zip(sums.grid, _grid_steps(grey, y0, y1))]


def frame_features(grey: np.ndarray) -> dict[str, float]:
    """The 12 per-frame features of one grey uint8 frame (H, W), H and W >= 8.

    The frame is processed in strips of 64 rows so that every intermediate stays
    in cache. The high-pass residual, the Laplacian and the Sobel gradients of
    an 8-bit frame are integers (int16) with exact sums; only the DCT and the
    gradient magnitude are floats, summed per strip in a fixed order.
    """
    if grey.ndim != 2 or grey.shape[0] < 8 or grey.shape[1] < 8:
        raise ValueError(f"need a grey frame of at least 8x8, got shape {grey.shape}")
    h, w = grey.shape
    n = h * w
    sums = _Sums()
    for y0 in range(0, h, STRIP_ROWS):
        _add_strip(grey, y0, min(h, y0 + STRIP_ROWS), (w // 8) * 8, sums)

    noise_mean, noise_std, noise_energy = _stats(*sums.res, n)
    _, lap_std, _ = _stats(*sums.lap, n)
    grad_mean, grad_std, _ = _stats(sums.grad_sum, sums.grad_sq, n)

    dc = np.concatenate(sums.dc)
    n_dc = dc.size
    n_ac = n_dc * 63
    n_px = n_dc * 64
    centred_sq = sums.px[1] - 256.0 * sums.px[0] + 128.0 * 128.0 * n_px  # sum of (g - 128)^2
    dc_sum, dc_sq = float(dc.sum()), float(np.square(dc).sum())
    dc_mean, dc_std, _ = _stats(dc_sum, dc_sq, n_dc)
    ac_mean_signed = (sums.coeff_sum - dc_sum) / n_ac
    ac_energy = (centred_sq - dc_sq) / n_ac
    ac_std = float(np.sqrt(max(0.0, ac_energy - ac_mean_signed * ac_mean_signed)))
    ac_abs_mean = (sums.coeff_abs - float(np.abs(dc).sum())) / n_ac

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
        "boundary_inconsistency": _grid_ratio(*sums.grid),
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

