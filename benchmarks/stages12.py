"""Stage 1 and 2 costs on this machine, against references measured in the same run.

    .venv/bin/python -m benchmarks.stages12      (also part of `make bench`)

1. Features per sampled frame (one thread: OpenCV, BLAS and NumPy pinned to 1)
   at 720p and 1080p, against PyAV decoding the same frames (one thread, and
   PyAV's default threading). Target: ratio <= 1.0 at 1080p.
2. Peak RSS of stage 2 on a 1080p 60 s video (default sampling). Target < 400 MB.
3. Stage 1 at 1080p (11 clips, frames written per second) against `ffmpeg`
   re-encoding the same video with the same x264 settings: goal >= 0.75x; and the
   peak RSS of a process holding the code location, as a step does: goal <= 400 MB.
   FVC_BENCH_LONG=1 adds the 1080p 60 s video (about 15 minutes here).
"""

from __future__ import annotations

import os
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
    """Stage 1 as its step runs it: the code location loaded first (what a step process holds
    before it starts), then the 11 clips with the asset's default memory budget."""
    import fvc_assets.definitions  # noqa: F401 - the step's own starting size
    from fvc_assets.augment.assets import AugmentConfig
    from fvc_assets.augment.clips import augment_video, encoders_at_once
    from fvc_resources.video import probe, upright_size

    base = peak_mb()
    facts = probe(path)
    budget = AugmentConfig().clips_memory_mb
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        cpu = time.process_time()
        rows = augment_video(path, Path(out), video_id="bench", label="real", dup_group="g", fps=facts.fps,
                             memory_mb=budget)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
    written = sum(r["frames"] for r in rows)
    return {"seconds": seconds, "frames": written, "fps": written / seconds, "peak_mb": peak_mb(),
            "base_mb": base, "cores_used": cpu / seconds, "at_once": encoders_at_once(*upright_size(path), budget)}


def stage1_rows(videos: list[tuple[str, Path]]) -> list[list]:
    """Stage 1 against one `ffmpeg` re-encode of the same video with the same x264 settings
    (ffmpeg's own thread choice), each measured in its own process, side by side."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, video in videos:
            ours = in_subprocess("benchmarks.stages12", "stage1", str(video), "0")
            source_frames = ours["frames"] // 11
            ref = timed_command(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(video),
                                 "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-x264-params", "mbtree=0",
                                 "-pix_fmt", "yuv420p", str(Path(tmp) / "ref.mp4")])
            ref_fps = source_frames / ref["seconds"]
            rows.append([name, "ffmpeg re-encode", source_frames, f"{ref['seconds']:.1f}", f"{ref_fps:.1f}",
                         "", f"{ref['peak_mb']:.0f}", "1.00", ""])
            rows.append([name, f"stage 1, 11 clips ({ours['at_once']} at once)", ours["frames"],
                         f"{ours['seconds']:.1f}", f"{ours['fps']:.1f}", f"{ours['cores_used']:.2f}",
                         f"{ours['peak_mb']:.0f} ({ours['base_mb']:.0f} before)", f"{ours['fps'] / ref_fps:.2f}",
                         f"{ours['peak_mb'] / 400:.2f}"])
    return rows


STAGE1_HEADERS = ["video", "route", "frames written", "seconds", "frames/s", "cores used", "peak RSS MB",
                  "x ffmpeg (goal >= 0.75)", "x 400 MB (goal <= 1)"]


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

    print("Stage 1 at 1080p: 11 clips (original + 10 augmentations) vs one ffmpeg re-encode, same x264 settings\n")
    videos = [("1080p 10 s", v1080)]
    if os.environ.get("FVC_BENCH_LONG"):
        videos.append(("1080p 60 s", v1080_long))  # about 15 minutes on 2 cores
    print_table(STAGE1_HEADERS, stage1_rows(videos))


def one(what: str, path: str, n: int) -> dict:
    if what == "features":
        return _features_one(path, n)
    if what == "stage2":
        return _stage2_rss_one(path)
    return _stage1_one(path)


if __name__ == "__main__":
    cli(main, one)
