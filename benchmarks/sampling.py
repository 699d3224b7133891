"""Sampling N frames vs decoding the whole video, on 1080p and 720p H.264 of two lengths.

    .venv/bin/python -m benchmarks.sampling      (or `make bench`)

Routes measured in the same run, each in its own process (time and peak RSS):
  sample   fvc_resources.video.sample_frames (seek or decode forward, per target)
  seek     a seek to the keyframe before every target (the naive seek route)
  pyav     PyAV decoding every frame (the forward route), threads on
  ffmpeg   `ffmpeg -i X -f null -` (reference decoder speed)
Ratios are against `pyav` and `ffmpeg` on the same video.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from benchmarks._measure import REPO_ROOT, cli, in_subprocess, peak_mb, print_table, timed_command

CACHE = REPO_ROOT / "benchmarks" / ".cache"
VIDEOS = [  # (name, size, seconds): H.264 at ~6 Mb/s (1080p) / ~3 Mb/s (720p), keyframe every 250 frames
    ("1080p_10s", "1920x1080", 10, "6M"),
    ("1080p_60s", "1920x1080", 60, "6M"),
    ("720p_10s", "1280x720", 10, "3M"),
    ("720p_60s", "1280x720", 60, "3M"),
]


def make_video(name: str, size: str, seconds: int, bitrate: str) -> Path:
    path = CACHE / f"{name}.mp4"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.mp4")
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
             "-i", f"testsrc2=size={size}:rate=30", "-f", "lavfi", "-i", f"nullsrc=size={size}:rate=30",
             "-filter_complex", "[1:v]geq=random(1)*255:128:128[n];[0:v][n]blend=all_mode=overlay:all_opacity=0.15",
             "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-b:v", bitrate,
             "-g", "250", "-pix_fmt", "yuv420p", str(tmp)],
            check=True,
        )
        tmp.rename(path)
    return path


def one(method: str, path: str, n: int) -> dict:
    import av

    from fvc_resources.video import sample_frames, sample_times

    start = time.perf_counter()
    got = 0
    if method == "sample":
        got = sum(1 for _ in sample_frames(path, n))
    elif method == "seek":
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            duration = float(stream.duration * stream.time_base)
            for target in sample_times(0.0, duration, n):
                container.seek(int(target / stream.time_base), stream=stream, backward=True)
                for frame in container.decode(stream):
                    if frame.time + 1 / float(stream.average_rate) > target:
                        frame.to_ndarray(format="rgb24")
                        got += 1
                        break
    elif method == "pyav":
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            got = sum(1 for _ in container.decode(stream))
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_mb(), "frames": got}


def main() -> None:
    rows = []
    for name, size, seconds, bitrate in VIDEOS:
        path = make_video(name, size, seconds, bitrate)
        ref_pyav = in_subprocess("benchmarks.sampling", "pyav", str(path), "0")
        ref_ffmpeg = timed_command(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "null", "-"])
        results = [("pyav full decode", ref_pyav), ("ffmpeg -f null", ref_ffmpeg)]
        for n in (8, 32):
            results.append((f"seek every target, N={n}", in_subprocess("benchmarks.sampling", "seek", str(path), str(n))))
            results.append((f"sample_frames, N={n}", in_subprocess("benchmarks.sampling", "sample", str(path), str(n))))
        for label, r in results:
            rows.append([
                name, label, f"{r['seconds']:.2f}", f"{r['peak_mb']:.0f}",
                f"{r['seconds'] / ref_pyav['seconds']:.2f}", f"{r['seconds'] / ref_ffmpeg['seconds']:.2f}",
            ])
    print("Frame sampling (H.264, keyframe every 250 frames); ratios < 1 are faster than the reference\n")
    print_table(["video", "route", "seconds", "peak MB", "x pyav full", "x ffmpeg"], rows)


if __name__ == "__main__":
    cli(main, one)
