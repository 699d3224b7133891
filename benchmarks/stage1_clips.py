"""Where stage 1's time goes, clip by clip: decoding, transform, RGB to 4:2:0, x264, against ffmpeg.

    .venv/bin/python -m benchmarks.stage1_clips [--frames 60] [--size 1080p_10s]

Each of the 11 clips is written alone (one clip at a time, as ``augment_video`` writes each
clip: its own decoder, transform and encoder) from the first ``--frames`` frames of the
benchmark video, and the CPU milliseconds per frame of each part are summed. The reference,
in the same run: ffmpeg re-encoding the source with the same x264 settings on one thread,
and ffmpeg re-encoding each clip stage 1 wrote (its encoder's work on what stage 1 gives it:
noise costs x264 several times what the source does).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._measure import print_table
from benchmarks.sampling import make_video
from benchmarks.steps import SIZES

ONE_THREAD_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-x264-params", "mbtree=0",
                   "-threads", "1", "-pix_fmt", "yuv420p"]


def ffmpeg_ms_per_frame(path: Path, frames: int) -> float:
    started = time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", str(frames), *ONE_THREAD_X264,
                    "-f", "null", "-"], check=True)
    return (time.perf_counter() - started) * 1000 / frames


def clip_costs(source: Path, clip: int, out: Path, frames: int) -> dict[str, float]:
    """CPU ms per frame of each part of writing one clip, as ``augment_video`` does."""
    from fvc_assets.augment.transforms import build_transform
    from fvc_resources.video import ClipWriter, iter_chunks

    transform = build_transform("bench", clip, 0)
    spent = dict.fromkeys(("decode", "transform", "convert", "encode"), 0.0)
    writer = ClipWriter(out, 30.0)
    chunks = iter_chunks(source, 8, max_frames=frames, upright=True)
    while True:
        mark = time.process_time()
        chunk = next(chunks, None)
        spent["decode"] += time.process_time() - mark
        if chunk is None:
            break
        mark = time.process_time()
        chunk = transform.apply(chunk)
        spent["transform"] += time.process_time() - mark
        for image in chunk:  # ClipWriter.write, its conversion and its encoding timed apart
            mark = time.process_time()
            frame = writer._frame(image)
            spent["convert"] += time.process_time() - mark
            writer._start(image.shape[1], image.shape[0])
            mark = time.process_time()
            writer._out.mux(writer._stream.encode(frame))
            writer.frames += 1
            spent["encode"] += time.process_time() - mark
    mark = time.process_time()
    writer.close()
    spent["encode"] += time.process_time() - mark
    return {part: seconds * 1000 / frames for part, seconds in spent.items()}


def main() -> None:
    from fvc_assets.augment.clips import CLIP_INDICES, clip_name

    parser = argparse.ArgumentParser(prog="benchmarks.stage1_clips")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="1080p_10s", choices=sorted(SIZES))
    args = parser.parse_args(sys.argv[1:])
    size, seconds, bitrate = SIZES[args.size]
    source = make_video(args.size, size, seconds, bitrate)
    reference = ffmpeg_ms_per_frame(source, args.frames)
    rows, totals = [], dict.fromkeys(("decode", "transform", "convert", "encode", "ffmpeg"), 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        for clip in CLIP_INDICES:
            path = Path(tmp) / f"{clip_name(clip)}.mp4"
            costs = clip_costs(source, clip, path, args.frames)
            costs["ffmpeg"] = ffmpeg_ms_per_frame(path, args.frames)
            for part, ms in costs.items():
                totals[part] += ms
            rows.append([clip_name(clip), *(f"{costs[p]:.1f}" for p in totals),
                         f"{sum(costs[p] for p in ('decode', 'transform', 'convert', 'encode')):.1f}"])
    rows.append(["all 11", *(f"{totals[p]:.1f}" for p in totals),
                 f"{sum(totals[p] for p in ('decode', 'transform', 'convert', 'encode')):.1f}"])
    print(f"Stage 1 clip by clip, {args.size}, first {args.frames} frames: CPU ms per frame (one thread "
          f"per clip); ffmpeg: one-thread re-encode of the clip written (wall ms per frame)\n")
    print_table(["clip", "decode", "transform", "RGB to 4:2:0", "x264", "ffmpeg on the clip", "stage 1 sum"], rows)
    original = next(row for row in rows if row[0] == "original")
    own = sum(totals[p] for p in ("decode", "transform", "convert", "encode"))
    copies_x264, copies_ffmpeg = 11 * float(original[4]), 11 * float(original[5])
    print(f"\nffmpeg re-encoding the source: {reference:.1f} ms per frame (with its start). Against 11 re-encodes "
          f"of the original clip (the source's content): x264 on stage 1's 11 clips "
          f"{copies_x264 / totals['encode']:.2f} x, ffmpeg on them {copies_ffmpeg / totals['ffmpeg']:.2f} x (the best "
          f"stage 1 could reach if nothing but its encoder cost anything); stage 1's whole sum "
          f"{copies_ffmpeg / own:.2f} x")

if __name__ == "__main__":
    main()
