"""Deterministic demo corpus: real encoded videos that look like the FVC problem.

Sources are synthetic scenes (a textured background that pans, moving shapes,
sensor-like noise). Each fake carries the trace of one manipulation family
(``FAMILIES``; the manifest's ``manipulation`` column names it), inside a moving
region blended in with a feathered edge:

- ``resample_jpeg``: the region resampled to 25 % and back (no sensor noise,
  interpolation traces) and JPEG-compressed on a grid shifted against the
  frame's 8x8 grid (double compression). High frequencies only.
- ``splice``: the region comes from another scene (a face-swap's donor), with
  a colour cast, a weaker sensor noise and a blur: a colour, noise and
  sharpness mismatch that is still visible at a few dozen pixels a side.
- ``flicker``: the region's brightness jumps from frame to frame (a temporal
  trace: each frame alone shows only a soft shading).
- ``upsample``: the region rendered at half resolution and upsampled the way a
  strided transposed convolution does, leaving a 2-pixel checkerboard
  (a generator's trace, gone once the frame is scaled down).

Codec, container, size,
fps, duration and bitrate are drawn independently of the label, so no model
can score by metadata alone. Near-duplicates are made the way reposts are:
decode a source file and re-encode it at another bitrate, at another size, or
trimmed; they share the source's cascade.

Scores on this corpus say nothing about accuracy on real FVC videos.
"""

from __future__ import annotations

import csv
import string
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from fvc_resources.atomic import atomic_path
from fvc_resources.video import iter_chunks, write_clip

# (width, height): 240p to 1080p, landscape, 9:16 and 1:1.
RESOLUTIONS = [
    (426, 240), (640, 360), (854, 480), (1280, 720), (1920, 1080),
    (360, 640), (720, 1280), (480, 480), (720, 720),
]
FPS_CHOICES = [15, 24, 25, 30, 50, 60]
# (codec, container suffix, encoder options)
ENCODINGS = [
    ("libx264", ".mp4", {"preset": "ultrafast", "tune": "film"}),
    ("mpeg4", ".avi", {}),
    ("libvpx-vp9", ".webm", {"deadline": "realtime", "cpu-used": "8", "row-mt": "1"}),
    ("libx264", ".mkv", {"preset": "ultrafast"}),
    ("mpeg4", ".mp4", {}),
]
PLATFORMS = ["youtube"] * 6 + ["facebook"] * 3 + ["twitter"]
NEAR_DUPLICATE_KINDS = ["reencode", "resize", "trim"]
# Pixels x frames per source video: keeps the whole corpus to tens of seconds on 2 cores.
PIXEL_FRAME_BUDGET = 16_000_000
# 48 videos (about 32 dup_groups): with 24, five folds held about 5 videos each and fold scores
# swung from chance to perfect; 48 smaller videos cost stages 1-4 about what 24 larger ones did.
DEFAULT_VIDEOS = 48
# `make demo`'s corpus: frame sides halved and at most 24 frames a source (`--scale 1 --max-frames 0` for the
# plan's full sizes). Every trace stays visible at the models' inputs (benchmarks.demo_trace,
# benchmarks.learnability); stages 1-4 cost about a sixth of the full corpus's pixels x frames.
DEFAULT_SCALE, DEFAULT_MAX_FRAMES = 0.5, 24
MIN_DURATION, MAX_DURATION = 1.0, 20.0
MIN_SHRUNK_FRAMES = 8  # the frame models sample up to 8 frames of a clip
# Manipulation families of the fakes, in the order fakes cycle through them (module docstring).
FAMILIES = ("resample_jpeg", "splice", "flicker", "upsample")


@dataclass(frozen=True)
class DemoVideo:
    file_name: str
    cascade_id: str
    label: str
    platform: str
    video_url: str
    width: int
    height: int
    fps: int
    duration: float
    codec: str
    suffix: str
    bitrate: int
    seed: int
    source: str | None = None  # file name of the source, for near-duplicates
    derivation: str | None = None  # reencode | resize | trim
    manipulation: str | None = None  # a FAMILIES name for fakes; None for real videos

    @property
    def frames(self) -> int:
        return max(1, int(round(self.duration * self.fps)))


def _platform_id(rng: np.random.Generator, platform: str) -> str:
    if platform == "youtube":
        alphabet = string.ascii_letters + string.digits + "-_"
        return "".join(rng.choice(list(alphabet), size=11))
    if platform == "facebook":
        return str(rng.integers(10**14, 10**16))
    return str(rng.integers(10**18, 9 * 10**18))


def _url(platform: str, platform_id: str, rng: np.random.Generator) -> str:
    if platform == "youtube":
        return f"https://www.youtube.com/watch?v={platform_id}"
    if platform == "facebook":
        page = "".join(rng.choice(list(string.ascii_lowercase), size=8))
        return f"https://www.facebook.com/{page}/videos/{platform_id}/"
    user = "".join(rng.choice(list(string.ascii_lowercase), size=7))
    return f"https://twitter.com/{user}/status/{platform_id}"


def _fit_budget(width: int, height: int, fps: int, duration: float) -> tuple[int, float]:
    """Shorten (then slow) a clip until it fits the pixel budget; never below 1 s."""
    budget_duration = PIXEL_FRAME_BUDGET / (width * height * fps)
    if budget_duration >= MIN_DURATION:
        return fps, min(duration, budget_duration)
    slower = [f for f in FPS_CHOICES if PIXEL_FRAME_BUDGET / (width * height * f) >= MIN_DURATION]
    return (max(slower) if slower else min(FPS_CHOICES)), MIN_DURATION


def check_families(families) -> tuple[str, ...]:
    families = tuple(dict.fromkeys(families))
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"unknown manipulation family {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(FAMILIES)}")
    return families


def shrink(plan: list[DemoVideo], scale: float = 1.0, max_frames: int | None = None) -> list[DemoVideo]:
    """The same corpus, smaller: frame sides times ``scale`` (even, at least 32 px) and at most
    ``max_frames`` frames per source; a near-duplicate keeps its share of its source's length.

    For checks of behaviour rather than of scale (the test suite, a first try): every other choice
    (labels, groups, families, codecs, frame rates) is the plan's own.
    """
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    if max_frames is not None and max_frames < MIN_SHRUNK_FRAMES:
        raise ValueError(f"max_frames must be at least {MIN_SHRUNK_FRAMES}, got {max_frames}")
    if scale == 1 and max_frames is None:
        return plan

    def side(pixels: int) -> int:
        return max(32, int(round(pixels * scale / 2)) * 2)

    def capped(video: DemoVideo) -> float:
        return video.duration if max_frames is None else min(video.duration, max_frames / video.fps)

    sources = {v.file_name: v for v in plan if v.source is None}
    shrunk = []
    for video in plan:
        if video.source is None:
            duration = capped(video)
        else:  # the duplicate's share of its source (trims stay shorter than their source)
            source = sources[video.source]
            duration = video.duration * capped(source) / source.duration
            if max_frames is not None:  # never fewer frames than the frame models sample
                duration = min(capped(source), max(duration, MIN_SHRUNK_FRAMES / video.fps))
        width, height = side(video.width), side(video.height)
        area = width * height / (video.width * video.height)
        shrunk.append(replace(video, width=width, height=height, duration=round(duration, 3),
                              bitrate=max(20_000, int(video.bitrate * area))))
    return shrunk


def plan_corpus(n_videos: int = DEFAULT_VIDEOS, seed: int = 0,
                families: tuple[str, ...] = FAMILIES, duplicates: int | None = None) -> list[DemoVideo]:
    """Specs for ``n_videos`` videos: ``duplicates`` near-duplicates (default a third, rounded down), the
    rest sources. The sources are the same for every ``duplicates`` that leaves as many of them.

    Fake sources cycle through ``families`` in a seeded order; near-duplicates keep their
    source's family. The families are drawn apart from every other choice, so a corpus with
    other families has the same sizes, codecs, durations and groups.
    """
    if n_videos < 2:
        raise ValueError("the demo corpus needs at least 2 videos (one per label)")
    families = check_families(families)
    family_rng = np.random.default_rng([seed, 7])
    family_order = [families[i] for i in family_rng.permutation(len(families))]
    rng = np.random.default_rng(seed)
    duplicates = n_videos // 3 if duplicates is None else duplicates
    if not 0 <= duplicates <= n_videos - 2:
        raise ValueError(f"near-duplicates must be between 0 and {n_videos - 2} for {n_videos} videos "
                         f"(at least 2 sources: one per label), not {duplicates}")
    n_sources = n_videos - duplicates
    labels = np.array(["fake", "real"] * ((n_sources + 1) // 2))[:n_sources]
    rng.shuffle(labels)
    # Cycle through shuffled lists so every size and encoding appears; independent of the label.
    resolutions = [RESOLUTIONS[i] for i in rng.permutation(len(RESOLUTIONS))]
    encodings = [ENCODINGS[i] for i in rng.permutation(len(ENCODINGS))]
    counters = {"fake": 0, "real": 0}
    used_ids: set[str] = set()
    sources: list[DemoVideo] = []
    for i in range(n_sources):
        width, height = resolutions[i % len(resolutions)]
        codec, suffix, _ = encodings[i % len(encodings)]
        fps = int(rng.choice(FPS_CHOICES))
        duration = float(np.exp(rng.uniform(np.log(MIN_DURATION), np.log(MAX_DURATION))))
        fps, duration = _fit_budget(width, height, fps, duration)
        platform = str(rng.choice(PLATFORMS))
        pid = _platform_id(rng, platform)
        while pid in used_ids:
            pid = _platform_id(rng, platform)
        used_ids.add(pid)
        label = str(labels[i])
        cascade = f"{label[0]}{counters[label]}"
        manipulation = family_order[counters[label] % len(family_order)] if label == "fake" else None
        counters[label] += 1
        bits_per_pixel = float(rng.uniform(0.12, 0.30))
        sources.append(
            DemoVideo(
                file_name=pid + suffix,
                cascade_id=cascade,
                label=label,
                platform=platform,
                video_url=_url(platform, pid, rng),
                width=width,
                height=height,
                fps=fps,
                duration=round(duration, 3),
                codec=codec,
                suffix=suffix,
                bitrate=int(bits_per_pixel * width * height * fps),
                seed=int(rng.integers(0, 2**31 - 1)),
                manipulation=manipulation,
            )
        )
    # One long video, always: the smallest source runs the full 20 s.
    smallest = min(range(n_sources), key=lambda k: sources[k].width * sources[k].height)
    s = sources[smallest]
    fps, duration = _fit_budget(s.width, s.height, 15, MAX_DURATION)
    sources[smallest] = replace(s, fps=fps, duration=round(duration, 3),
                                bitrate=int(s.bitrate / s.fps * fps))
    duplicates: list[DemoVideo] = []
    for j in range(n_videos - n_sources):
        src = sources[int(rng.integers(0, n_sources))]
        kind = NEAR_DUPLICATE_KINDS[j % len(NEAR_DUPLICATE_KINDS)]
        platform = str(rng.choice(PLATFORMS))
        pid = _platform_id(rng, platform)
        while pid in used_ids:
            pid = _platform_id(rng, platform)
        used_ids.add(pid)
        codec, suffix, _ = ENCODINGS[int(rng.integers(0, len(ENCODINGS)))]
        dup = replace(
            src,
            file_name=pid + suffix,
            platform=platform,
            video_url=_url(platform, pid, rng),
            codec=codec,
            suffix=suffix,
            source=src.file_name,
            derivation=kind,
            seed=int(rng.integers(0, 2**31 - 1)),
        )
        if kind == "reencode":
            dup = replace(dup, bitrate=int(src.bitrate * rng.uniform(0.3, 0.6)))
        elif kind == "resize":
            scale = float(rng.uniform(0.5, 0.8))
            w, h = int(src.width * scale) // 2 * 2, int(src.height * scale) // 2 * 2
            dup = replace(dup, width=w, height=h, bitrate=int(src.bitrate * scale * scale))
        else:  # trim: keep a middle part of at least 1 s
            keep = max(MIN_DURATION, src.duration * float(rng.uniform(0.4, 0.8)))
            dup = replace(dup, duration=round(min(keep, src.duration), 3))
        duplicates.append(dup)
    return sources + duplicates


class SceneRenderer:
    """Deterministic synthetic footage for one source video; frame i depends only on (seed, i)."""

    def __init__(self, video: DemoVideo):
        self.video = video
        rng = np.random.default_rng(video.seed)
        w, h = video.width, video.height
        # Background: low-frequency colour texture, larger than the frame so it can pan.
        self.pad = max(8, min(w, h) // 8)
        # Texture cells a sixth of the short side: the same scene scale at every resolution, so a scaled-down
        # frame looks alike whatever the source size (cells of a fixed pixel size made small sources smooth
        # and large ones busy, a nuisance larger than any trace at the frame models' input).
        cell = max(8, min(w, h) // 6)
        small = rng.uniform(40, 215, size=(max(2, (h + 2 * self.pad) // cell), max(2, (w + 2 * self.pad) // cell), 3))
        bg = cv2.resize(small.astype(np.float32), (w + 2 * self.pad, h + 2 * self.pad), interpolation=cv2.INTER_CUBIC)
        fine = cv2.resize(
            rng.uniform(-10, 10, size=((h + 2 * self.pad) // 4, (w + 2 * self.pad) // 4, 3)).astype(np.float32),
            (w + 2 * self.pad, h + 2 * self.pad),
            interpolation=cv2.INTER_LINEAR,
        )
        self.background = np.clip(bg + fine, 0, 255).astype(np.uint8)
        self.pan = rng.uniform(-1, 1, size=2) * self.pad / max(1, video.frames)
        self.shapes = [
            {
                "centre": rng.uniform(0.15, 0.85, size=2),
                "velocity": rng.uniform(-0.25, 0.25, size=2),
                "radius": float(rng.uniform(0.05, 0.15)),
                "colour": tuple(int(c) for c in rng.integers(20, 235, size=3)),
                "square": bool(rng.integers(0, 2)),
            }
            for _ in range(int(rng.integers(3, 6)))
        ]
        # Sensor noise: a small bank of independent frames, cycled (cheap at 1080p).
        sigma = 8.0  # the same sensor for every video: the splice, not the camera, is the signal
        self.noise = [
            np.clip(rng.normal(0, sigma, size=(h, w, 3)), -12, 12).astype(np.int16) for _ in range(3)
        ]
        # The splice region of fakes: an ellipse drifting over the frame.
        self.splice_centre = rng.uniform(0.35, 0.65, size=2)
        self.splice_velocity = rng.uniform(-0.08, 0.08, size=2)
        self.splice_axes = rng.uniform(0.36, 0.44, size=2)  # semi-axes, fractions of width and height
        self.jpeg_quality = int(rng.integers(20, 35))
        self.grid_shift = int(rng.integers(2, 7))
        # The other families' parameters come from their own stream, so the draws above (and so real
        # videos and resample_jpeg fakes) are the same whichever families a corpus has.
        family_rng = np.random.default_rng([video.seed, 1])
        self.region_axes = family_rng.uniform(0.26, 0.34, size=2)  # splice, flicker, upsample
        self.cast = np.ones(3, np.float32)
        up, down = family_rng.choice(3, size=2, replace=False)
        self.cast[up], self.cast[down] = family_rng.uniform(1.2, 1.35), family_rng.uniform(0.7, 0.8)
        self.flicker_amplitude = float(family_rng.uniform(0.15, 0.25))
        self.flicker_signs = family_rng.choice([-1.0, 1.0], size=max(1, video.frames))
        self.checker_contrast = float(family_rng.uniform(0.06, 0.10))
        self._donor: SceneRenderer | None = None

    @property
    def manipulation(self) -> str:
        return self.video.manipulation or "resample_jpeg"

    def frame(self, i: int) -> np.ndarray:
        img = self.clean_frame(i).astype(np.int16)
        img += self.noise[i % len(self.noise)]
        img = np.clip(img, 0, 255).astype(np.uint8)
        if self.video.label != "fake":
            return img
        t = i / self.video.fps
        family = self.manipulation
        if family == "resample_jpeg":
            return self._resample_jpeg(img, t)
        if family == "splice":
            return self._splice(img, i, t)
        if family == "flicker":
            return self._flicker(img, i, t)
        if family == "upsample":
            return self._upsample(img, t)
        raise ValueError(f"{self.video.file_name}: unknown manipulation {family!r}")

    def clean_frame(self, i: int) -> np.ndarray:
        """The scene without sensor noise: panned background and moving shapes."""
        v = self.video
        t = i / v.fps
        w, h = v.width, v.height
        ox = int(round(self.pad + self.pan[0] * i))
        oy = int(round(self.pad + self.pan[1] * i))
        img = self.background[oy : oy + h, ox : ox + w].copy()
        side = min(w, h)
        for s in self.shapes:
            cx, cy = (s["centre"] + s["velocity"] * t) % 1.0
            centre = (int(cx * w), int(cy * h))
            r = int(s["radius"] * side)
            if s["square"]:
                cv2.rectangle(img, (centre[0] - r, centre[1] - r), (centre[0] + r, centre[1] + r), s["colour"], -1)
            else:
                cv2.circle(img, centre, r, s["colour"], -1, lineType=cv2.LINE_AA)
        return img

    def _region(self, t: float, axes) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) of the drifting elliptical region with semi-axes ``axes`` (fractions of w, h)."""
        h, w = self.video.height, self.video.width
        cx, cy = np.clip(self.splice_centre + self.splice_velocity * t, 0.3, 0.7)
        ax, ay = int(axes[0] * w), int(axes[1] * h)
        x0, x1 = max(0, int(cx * w) - ax), min(w, int(cx * w) + ax)
        y0, y1 = max(0, int(cy * h) - ay), min(h, int(cy * h) + ay)
        return y0, y1, x0, x1

    @staticmethod
    def _feathered(rh: int, rw: int, feather: float) -> np.ndarray:
        mask = np.zeros((rh, rw), np.float32)
        cv2.ellipse(mask, (rw // 2, rh // 2), (max(1, rw // 2 - 4), max(1, rh // 2 - 4)), 0, 0, 360, 1.0, -1)
        return cv2.GaussianBlur(mask, (0, 0), sigmaX=max(1.0, feather))[..., None]

    @staticmethod
    def _blend(img: np.ndarray, box, inside: np.ndarray, mask: np.ndarray) -> np.ndarray:
        y0, y1, x0, x1 = box
        region = img[y0:y1, x0:x1].astype(np.float32)
        img[y0:y1, x0:x1] = np.clip(inside.astype(np.float32) * mask + region * (1 - mask) + 0.5, 0, 255)
        return img

    def _resample_jpeg(self, img: np.ndarray, t: float) -> np.ndarray:
        y0, y1, x0, x1 = self._region(t, self.splice_axes)
        region = img[y0:y1, x0:x1]
        rh, rw = region.shape[:2]
        if rh < 16 or rw < 16:
            return img
        # Resampling: down to 25 % and back, bilinear, which strips the sensor noise.
        small = cv2.resize(region, (max(8, int(rw * 0.25)), max(8, int(rh * 0.25))), interpolation=cv2.INTER_AREA)
        resampled = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_LINEAR)
        # First compression on a grid shifted against the frame's 8x8 grid.
        s = self.grid_shift
        shifted = cv2.copyMakeBorder(resampled, s, 0, s, 0, cv2.BORDER_REFLECT)
        ok, buf = cv2.imencode(".jpg", shifted, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        recompressed = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)[s:, s:] if ok else resampled
        return self._blend(img, (y0, y1, x0, x1), recompressed, self._feathered(rh, rw, min(rw, rh) / 40))

    def _splice(self, img: np.ndarray, i: int, t: float) -> np.ndarray:
        """A donor scene's region: blurred, lower contrast, colour cast, a quarter of the sensor noise;
        feathered in."""
        if self._donor is None:
            self._donor = SceneRenderer(replace(self.video, seed=(self.video.seed + 1) % (2**31 - 1),
                                                label="real", manipulation=None))
        box = y0, y1, x0, x1 = self._region(t, self.region_axes)
        rh, rw = y1 - y0, x1 - x0
        if rh < 16 or rw < 16:
            return img
        donor = self._donor.clean_frame(i)[y0:y1, x0:x1].astype(np.float32)
        # Softer than the scene (a sixth of the region's size: still a blur at 64 px), flatter, tinted.
        donor = cv2.GaussianBlur(donor, (0, 0), sigmaX=max(1.0, min(rw, rh) / 6))
        mean = donor.mean(axis=(0, 1), keepdims=True)
        donor = (mean + 0.5 * (donor - mean)) * self.cast + self.noise[i % len(self.noise)][y0:y1, x0:x1] * 0.25
        return self._blend(img, box, donor, self._feathered(rh, rw, min(rw, rh) / 12))

    def _flicker(self, img: np.ndarray, i: int, t: float) -> np.ndarray:
        """The region's brightness up or down by the same amount, flipping at random from frame to frame."""
        box = y0, y1, x0, x1 = self._region(t, self.region_axes)
        rh, rw = y1 - y0, x1 - x0
        if rh < 16 or rw < 16:
            return img
        gain = 1.0 + self.flicker_amplitude * self.flicker_signs[i % len(self.flicker_signs)]
        region = img[y0:y1, x0:x1].astype(np.float32)
        return self._blend(img, box, region * gain, self._feathered(rh, rw, min(rw, rh) / 6))

    def _upsample(self, img: np.ndarray, t: float) -> np.ndarray:
        """The region at half resolution, doubled by a strided transposed convolution's pattern: pixel
        copies whose gain alternates on a 2-pixel checkerboard."""
        box = y0, y1, x0, x1 = self._region(t, self.region_axes)
        rh, rw = (y1 - y0) // 2 * 2, (x1 - x0) // 2 * 2
        if rh < 16 or rw < 16:
            return img
        box = (y0, y0 + rh, x0, x0 + rw)
        small = cv2.resize(img[y0:y0 + rh, x0:x0 + rw], (rw // 2, rh // 2), interpolation=cv2.INTER_AREA)
        doubled = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1).astype(np.float32)
        c = self.checker_contrast
        checker = np.where((np.add.outer(np.arange(rh), np.arange(rw)) % 2) == 0, 1 + c, 1 - c).astype(np.float32)
        return self._blend(img, box, doubled * checker[..., None], self._feathered(rh, rw, min(rw, rh) / 20))


def _encoder_options(codec: str, suffix: str) -> dict[str, str]:
    for c, s, options in ENCODINGS:
        if c == codec and s == suffix:
            return dict(options)
    return {}


def _render_source(video: DemoVideo, path: Path, chunk: int = 16) -> None:
    renderer = SceneRenderer(video)

    def chunks():
        for start in range(0, video.frames, chunk):
            yield np.stack([renderer.frame(i) for i in range(start, min(video.frames, start + chunk))])

    write_clip(path, chunks(), video.fps, codec=video.codec, bit_rate=video.bitrate,
               options=_encoder_options(video.codec, video.suffix))


def _render_duplicate(video: DemoVideo, source_path: Path, source: DemoVideo, path: Path) -> None:
    size = {}
    if video.derivation == "resize":
        size = {"width": video.width, "height": video.height}
    skip = 0
    if video.derivation == "trim":
        skip = (source.frames - video.frames) // 2

    def chunks():
        seen = 0
        for block in iter_chunks(source_path, 16, max_frames=skip + video.frames, **size):
            keep = block[max(0, skip - seen) :]
            seen += len(block)
            if len(keep):
                yield keep

    write_clip(path, chunks(), video.fps, codec=video.codec, bit_rate=video.bitrate,
               options=_encoder_options(video.codec, video.suffix))


MANIFEST_COLUMNS = ["cascade_id", "video_url", "label", "manipulation", "path"]


def write_corpus(out_dir: str | Path, n_videos: int = DEFAULT_VIDEOS, seed: int = 0,
                 families: tuple[str, ...] = FAMILIES, scale: float = 1.0, max_frames: int | None = None,
                 duplicates: int | None = None) -> Path:
    """Write the videos and ``manifest.csv`` (FVC columns plus ``manipulation`` and ``path``) into
    ``out_dir``.

    Existing files are never overwritten; a video already present is kept. ``scale`` and
    ``max_frames`` make every video smaller (:func:`shrink`). Returns the manifest's path.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = shrink(plan_corpus(n_videos, seed, families, duplicates), scale, max_frames)
    by_name = {v.file_name: v for v in plan}
    for video in plan:
        target = out_dir / video.file_name
        if target.exists():
            continue
        if video.source is None:
            _render_source(video, target)
        else:
            _render_duplicate(video, out_dir / video.source, by_name[video.source], target)
    manifest = out_dir / "manifest.csv"
    with atomic_path(manifest) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(MANIFEST_COLUMNS)
            for v in plan:
                writer.writerow([v.cascade_id, v.video_url, v.label, v.manipulation or "", v.file_name])
    return manifest


def describe_plan(plan: list[DemoVideo]) -> list[dict]:
    return [asdict(v) | {"frames": v.frames} for v in plan]
