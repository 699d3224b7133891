"""The 10 deterministic augmentations of stage 1 (pure NumPy/OpenCV, no Dagster).

Parameters are drawn once per clip from a generator seeded by (video id,
augmentation index, global seed), so every frame of a clip gets the same
transform (the clip stays temporally coherent) and re-running gives the same
parameters. Transforms work on chunks of frames, shape (k, H, W, 3) uint8, and
keep the frame size, so a clip streams chunk by chunk in bounded memory.
"""

from __future__ import annotations

import hashlib
from statistics import NormalDist
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

AUGMENTATIONS = (
    "rotation",
    "horizontal_flip",
    "brightness",
    "contrast",
    "saturation",
    "gaussian_noise",
    "gaussian_blur",
    "affine",
    "elastic",
    "combination",
)
ORIGINAL_INDEX = -1


def clip_seed(video_id: str, augmentation_idx: int, global_seed: int) -> int:
    """A stable 64-bit seed from (video id, augmentation index, global seed); not Python's hash()."""
    digest = hashlib.sha256(f"{global_seed}|{video_id}|{augmentation_idx}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


@dataclass
class ClipTransform:
    """One clip's transform: a name, its drawn parameters, and a chunk -> chunk function."""

    name: str
    params: dict
    apply: Callable[[np.ndarray], np.ndarray]
    state: dict = field(default_factory=dict, repr=False)


def _per_frame(chunk: np.ndarray, fn) -> np.ndarray:
    return np.stack([fn(frame) for frame in chunk])


def _warp(matrix: np.ndarray):
    def fn(frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        return cv2.warpAffine(frame, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)

    return fn


def _affine_matrix(width: int, height: int, angle=0.0, scale=1.0, shear=0.0, tx=0.0, ty=0.0) -> np.ndarray:
    """Rotation/scale/shear about the centre, then translation (fractions of the size)."""
    cx, cy = width / 2, height / 2
    a = np.deg2rad(angle)
    sh = np.deg2rad(shear)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    shear_m = np.array([[1, np.tan(sh)], [0, 1]])
    linear = scale * rot @ shear_m
    offset = np.array([cx, cy]) - linear @ np.array([cx, cy]) + np.array([tx * width, ty * height])
    return np.hstack([linear, offset[:, None]]).astype(np.float32)


def _flip(chunk: np.ndarray) -> np.ndarray:
    """Mirror left-right (OpenCV: about 20x faster than copying a reversed NumPy view)."""
    return _per_frame(chunk, lambda frame: cv2.flip(frame, 1))


def _linear(frame: np.ndarray, gain: float, offset: float) -> np.ndarray:
    """saturate(gain * frame + offset), in OpenCV (SIMD, no float copy of the frame)."""
    return cv2.addWeighted(frame, gain, frame, 0.0, offset)


def _brightness(factor: float):
    return lambda chunk: _per_frame(chunk, lambda f: _linear(f, factor, 0.0))


def _contrast(factor: float):
    # Stretch about each frame's mean grey level.
    def fn(frame):
        mean = float(np.mean(cv2.mean(frame)[:3]))
        return _linear(frame, factor, mean * (1.0 - factor))

    return lambda chunk: _per_frame(chunk, fn)


def _saturation(factor: float):
    def fn(frame):
        grey = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        return cv2.addWeighted(frame, factor, grey, 1.0 - factor, 0.0)

    return lambda chunk: _per_frame(chunk, fn)


def _noise(sigma: float, seed: int):
    """Gaussian noise, drawn afresh for every frame from a generator seeded by (clip seed, frame
    index): deterministic whatever the chunking. Random bytes map through a 256-entry table of
    the normal distribution's quantiles (mid-points of 256 equal-probability bins, so the tails
    stop at about 2.7 sigma), which costs about a third of drawing normal deviates. The table is
    split into its positive and negative parts, both uint8, so adding the noise is a saturating
    add then a saturating subtract (one of the two is 0 at each pixel): the same bytes as adding
    the signed noise, at half the cost of widening it to int16."""
    table = np.array([round(NormalDist(0.0, sigma).inv_cdf((k + 0.5) / 256)) for k in range(256)])
    raise_by, lower_by = np.clip(table, 0, 255).astype(np.uint8), np.clip(-table, 0, 255).astype(np.uint8)
    counter = {"frame": 0}

    def fn(frame):
        rng = np.random.default_rng((seed, counter["frame"]))
        counter["frame"] += 1
        uniform = np.frombuffer(rng.bytes(frame.size), np.uint8).reshape(frame.shape)
        return cv2.subtract(cv2.add(frame, cv2.LUT(uniform, raise_by)), cv2.LUT(uniform, lower_by))

    return lambda chunk: _per_frame(chunk, fn)


def _blur(radius: float):
    return lambda chunk: _per_frame(chunk, lambda f: cv2.GaussianBlur(f, (0, 0), sigmaX=radius))


def _elastic(alpha: float, sigma: float, seed: int):
    """Smooth random displacement field, drawn once per clip (per frame size) and reused for every frame."""
    cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def maps(h: int, w: int):
        if (h, w) not in cache:
            rng = np.random.default_rng(seed)
            # Draw on a coarse grid and upsample: smooth, and cheap at 1080p.
            gh, gw = max(2, h // 16), max(2, w // 16)
            dx = cv2.resize(rng.uniform(-1, 1, (gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
            dy = cv2.resize(rng.uniform(-1, 1, (gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
            k = int(2 * round(3 * sigma) + 1)
            dx = cv2.GaussianBlur(dx, (k, k), sigma) * alpha
            dy = cv2.GaussianBlur(dy, (k, k), sigma) * alpha
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            cache[(h, w)] = (xs + dx, ys + dy)
        return cache[(h, w)]

    def apply(chunk):
        h, w = chunk.shape[1:3]
        map_x, map_y = maps(h, w)
        return _per_frame(
            chunk, lambda f: cv2.remap(f, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        )

    return apply


def _compose(*fns):
    def apply(chunk):
        for fn in fns:
            chunk = fn(chunk)
        return chunk

    return apply


def _geometric(matrix_params: dict):
    """Affine warps need the frame size, known at the first chunk; the matrix is built once."""
    cache: dict[tuple[int, int], np.ndarray] = {}

    def apply(chunk):
        h, w = chunk.shape[1:3]
        if (h, w) not in cache:
            cache[(h, w)] = _affine_matrix(w, h, **matrix_params)
        return _per_frame(chunk, _warp(cache[(h, w)]))

    return apply


def build_transform(video_id: str, augmentation_idx: int, global_seed: int = 0) -> ClipTransform:
    """The transform of one clip; index -1 is the original (identity)."""
    if augmentation_idx == ORIGINAL_INDEX:
        return ClipTransform("original", {}, lambda chunk: chunk)
    name = AUGMENTATIONS[augmentation_idx]
    rng = np.random.default_rng(clip_seed(video_id, augmentation_idx, global_seed))
    r = lambda lo, hi: round(float(rng.uniform(lo, hi)), 4)  # noqa: E731
    if name == "rotation":
        params = {"angle": r(-10, 10)}
        return ClipTransform(name, params, _geometric({"angle": params["angle"]}))
    if name == "horizontal_flip":
        return ClipTransform(name, {}, _flip)
    if name == "brightness":
        params = {"factor": r(0.8, 1.2)}
        return ClipTransform(name, params, _brightness(params["factor"]))
    if name == "contrast":
        params = {"factor": r(0.8, 1.2)}
        return ClipTransform(name, params, _contrast(params["factor"]))
    if name == "saturation":
        params = {"factor": r(0.8, 1.2)}
        return ClipTransform(name, params, _saturation(params["factor"]))
    if name == "gaussian_noise":
        params = {"sigma": r(8, 12)}
        return ClipTransform(name, params, _noise(params["sigma"], int(rng.integers(0, 2**31 - 1))))
    if name == "gaussian_blur":
        params = {"radius": r(0.5, 2.0)}
        return ClipTransform(name, params, _blur(params["radius"]))
    if name == "affine":
        params = {"tx": r(-0.1, 0.1), "ty": r(-0.1, 0.1), "scale": r(0.9, 1.1), "shear": r(-8, 8)}
        return ClipTransform(name, params, _geometric(params))
    if name == "elastic":
        params = {"alpha": r(4, 8), "sigma": r(4, 6), "field_seed": int(rng.integers(0, 2**31 - 1))}
        return ClipTransform(name, params, _elastic(params["alpha"], params["sigma"], params["field_seed"]))
    # combination: flip, a small rotation, brightness and mild noise
    params = {"flip": True, "angle": r(-5, 5), "brightness": r(0.85, 1.15), "sigma": r(3, 6)}
    return ClipTransform(
        name,
        params,
        _compose(
            _flip,
            _geometric({"angle": params["angle"]}),
            _brightness(params["brightness"]),
            _noise(params["sigma"], int(rng.integers(0, 2**31 - 1))),
        ),
    )
