"""Deterministic demo corpus: real encoded videos that look like the FVC problem.

Sources are synthetic scenes (a textured background that pans, moving shapes,
sensor-like noise). Fakes carry a forensic trace: a moving elliptical region
that was resampled (down and up again, which removes the sensor noise and
leaves interpolation traces) and JPEG-compressed on a shifted 8x8 grid (double
compression), then blended in with a feathered edge. Codec, container, size,
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
MIN_DURATION, MAX_DURATION = 1.0, 20.0


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


def plan_corpus(n_videos: int = DEFAULT_VIDEOS, seed: int = 0) -> list[DemoVideo]:
    """Specs for ``n_videos`` videos: about two thirds sources, one third near-duplicates."""
    if n_videos < 2:
        raise ValueError("the demo corpus needs at least 2 videos (one per label)")
    rng = np.random.default_rng(seed)
    n_sources = max(2, (2 * n_videos + 2) // 3)
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
        small = rng.uniform(40, 215, size=(max(2, (h + 2 * self.pad) // 96), max(2, (w + 2 * self.pad) // 96), 3))
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

    def frame(self, i: int) -> np.ndarray:
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
        noisy = img.astype(np.int16)
        noisy += self.noise[i % len(self.noise)]
        img = np.clip(noisy, 0, 255).astype(np.uint8)
        if v.label == "fake":
            img = self._splice(img, t)
        return img

    def _splice(self, img: np.ndarray, t: float) -> np.ndarray:
        h, w = img.shape[:2]
        cx, cy = np.clip(self.splice_centre + self.splice_velocity * t, 0.3, 0.7)
        ax, ay = int(self.splice_axes[0] * w), int(self.splice_axes[1] * h)
        x0, x1 = max(0, int(cx * w) - ax), min(w, int(cx * w) + ax)
        y0, y1 = max(0, int(cy * h) - ay), min(h, int(cy * h) + ay)
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
        mask = np.zeros((rh, rw), np.float32)
        cv2.ellipse(mask, (rw // 2, rh // 2), (max(1, rw // 2 - 4), max(1, rh // 2 - 4)), 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=max(1.0, min(rw, rh) / 40))[..., None]
        blended = recompressed.astype(np.float32) * mask + region.astype(np.float32) * (1 - mask)
        img[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return img


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


MANIFEST_COLUMNS = ["cascade_id", "video_url", "label", "path"]


def write_corpus(out_dir: str | Path, n_videos: int = DEFAULT_VIDEOS, seed: int = 0) -> Path:
    """Write the videos and ``manifest.csv`` (FVC columns plus ``path``) into ``out_dir``.

    Existing files are never overwritten; a video already present is kept.
    Returns the manifest's path.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_corpus(n_videos, seed)
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
                writer.writerow([v.cascade_id, v.video_url, v.label, v.file_name])
    return manifest


def describe_plan(plan: list[DemoVideo]) -> list[dict]:
    return [asdict(v) | {"frames": v.frames} for v in plan]
