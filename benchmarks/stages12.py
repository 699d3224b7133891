"""Stage 1 and 2 costs on this machine, against references measured in the same run.

    .venv/bin/python -m benchmarks.stages12      (also part of `make bench`)

1. Features per sampled frame (one thread: OpenCV, BLAS and NumPy pinned to 1)
   at 720p and 1080p, against PyAV decoding the same frames (one thread, and
   PyAV's default threading). Target: ratio <= 1.0 at 1080p.
2. Peak RSS of stage 2 on a 1080p 60 s video (default sampling). Target < 400 MB.
3. Stage 1 throughput (11 clips, frames written per second) at 720p, against
   `ffmpeg` re-encoding the same clip with the same x264 settings. Target >= 0.5.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._measure import cli, in_subprocess, peak_mb, print_table, timed_command
from benchmarks.sampling import make_video

SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _features_one(path: str, n: int) -> dict:
    import av
    import cv2

    from fvc_assets.features.handcrafted import frame_features

    cv2.setNumThreads(1)
    frames = []
    timings = {}
    for label, thread_type in (("decode_1thread", None), ("decode_threads", "AUTO")):
        with av.open(path) as container:
            stream = container.streams.video[0]
            if thread_type:
                stream.thread_type = thread_type
            else:
                stream.thread_count = 1
            start = time.perf_counter()
            grabbed = []
            for i, frame in enumerate(container.decode(stream)):
                grabbed.append(frame.to_ndarray(format="gray"))
                if i + 1 == n:
                    break
            timings[label] = (time.perf_counter() - start) / len(grabbed)
            frames = grabbed
    # The route stage 2 really takes: sample_frames over the whole clip (default 10 %).
    from fvc_core.sampling import frames_to_sample
    from fvc_resources.video import probe, sample_frames

    k = frames_to_sample(probe(path).frame_count, 0.1, 5, 50)
    start = time.perf_counter()
    sampled = [s.image for s in sample_frames(path, k, fmt="gray")]
    timings["sampler_per_sampled_frame"] = (time.perf_counter() - start) / len(sampled)
    frame_features(frames[0])  # warm-up (allocations, BLAS init)
    start = time.perf_counter()
    for grey in frames:
        frame_features(grey)
    timings["features"] = (time.perf_counter() - start) / len(frames)
    return timings


def _stage2_rss_one(path: str) -> dict:
    from fvc_assets.features.extract import clip_features
    from fvc_resources.video import probe

    start = time.perf_counter()
    frames = probe(path).frame_count
    from fvc_core.sampling import frames_to_sample

    features = clip_features(path, lambda total: frames_to_sample(total, 0.1, 5, 50))
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_mb(), "frames": frames,
            "sampled": features["frames_sampled"]}


def _stage1_one(path: str) -> dict:
    from fvc_assets.augment.clips import augment_video
    from fvc_resources.video import probe

    fps = probe(path).fps
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        rows = augment_video(path, Path(out), video_id="bench", label="real", dup_group="g", fps=fps)
        seconds = time.perf_counter() - start
    written = sum(r["frames"] for r in rows)
    return {"seconds": seconds, "frames": written, "fps": written / seconds, "peak_mb": peak_mb()}


def main() -> None:
    os.environ.update(SINGLE_THREAD_ENV)  # inherited by the measuring subprocesses
    v720 = make_video("720p_10s", "1280x720", 10, "3M")
    v1080 = make_video("1080p_10s", "1920x1080", 10, "6M")
    v1080_long = make_video("1080p_60s", "1920x1080", 60, "6M")

    rows = []
    for name, path in (("720p", v720), ("1080p", v1080)):
        t = in_subprocess("benchmarks.stages12", "features", str(path), "40")
        rows.append([name, f"{t['features'] * 1000:.1f}", f"{t['decode_1thread'] * 1000:.1f}",
                     f"{t['decode_threads'] * 1000:.1f}", f"{t['sampler_per_sampled_frame'] * 1000:.1f}",
                     f"{t['features'] / t['decode_1thread']:.2f}", f"{t['features'] / t['decode_threads']:.2f}",
                     f"{t['features'] / t['sampler_per_sampled_frame']:.2f}"])
    print("Stage 2 features per sampled frame (one thread), against PyAV decoding the same frames\n")
    print_table(["video", "features ms", "decode ms (1 thread)", "decode ms (threads)",
                 "sampler ms/sampled frame", "x decode 1 thread", "x decode threads", "x sampler"], rows)

    r = in_subprocess("benchmarks.stages12", "stage2", str(v1080_long), "0")
    print(f"\nStage 2 on a 1080p 60 s video ({r['frames']} frames, {r['sampled']} sampled): "
          f"{r['seconds']:.1f} s, peak RSS {r['peak_mb']:.0f} MB (target < 400 MB)\n")

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip_720p.mp4"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(v720), "-t", "4",
                        "-c", "copy", str(clip)], check=True)
        ours = in_subprocess("benchmarks.stages12", "stage1", str(clip), "0")
        source_frames = ours["frames"] // 11
        ref = timed_command(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip),
                             "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-x264-params", "mbtree=0",
                             "-pix_fmt", "yuv420p", str(Path(tmp) / "ref.mp4")])
        ref_fps = source_frames / ref["seconds"]
        print("Stage 1 at 720p: 11 clips (original + 10 augmentations) vs one ffmpeg re-encode, same x264 settings\n")
        print_table(["route", "frames", "seconds", "frames/s", "peak MB", "x ffmpeg"], [
            ["ffmpeg re-encode", source_frames, f"{ref['seconds']:.2f}", f"{ref_fps:.0f}", f"{ref['peak_mb']:.0f}", "1.00"],
            ["augment_video (11 clips)", ours["frames"], f"{ours['seconds']:.2f}", f"{ours['fps']:.0f}",
             f"{ours['peak_mb']:.0f}", f"{ours['fps'] / ref_fps:.2f}"],
        ])


def one(what: str, path: str, n: int) -> dict:
    if what == "features":
        return _features_one(path, n)
    if what == "stage2":
        return _stage2_rss_one(path)
    return _stage1_one(path)


if __name__ == "__main__":
    cli(main, one)
