"""Where a per-video step's time goes inside a real run, against its kernel alone and against ffmpeg.

    .venv/bin/python -m benchmarks.steps [--sizes 480p_10s,1080p_10s,1080p_60s]

For each size, one video (testsrc2 with noise, H.264) goes into a fresh inbox, data root and
instance (the project's dagster.yaml), and `fvc run --skip-training` runs it through the run queue
as a user's run does. From the instance, per step: its wall time (STEP_START to STEP_SUCCESS) and
its own `cost/*` metadata, which splits the step's wall and CPU time into the kernel (encode,
decode, scale, features), probing clips, checks, previews and contact sheets, reading and writing
tables with their metadata, and the rest (Dagster's own work inside the step, imports).

References, measured in the same run, each in a fresh process:
- the kernel alone on the same inputs: stage 1's `augment_video`, stage 2's `video_features`,
  stage 3's `scale_clip` over the 11 clips, stage 4's features over the 11 scaled clips;
- ffmpeg: one `ffmpeg -i SRC -c:v libx264 -preset veryfast -crf 18 -x264-params mbtree=0` for
  stage 1 (which writes 11 clips: the ratio is 11 x ffmpeg's time over the step's), eleven
  `ffmpeg -i CLIP -vf scale=256:-2:flags=area ...` for stage 3;
- stage 1's encoder floor: the same ffmpeg re-encode run on each of the 11 clips the step wrote
  (noise makes x264 work several times harder than on the source: what no stage 1 can go below);
- stage 1's memory floor, each in a fresh process: the code location loaded (what a run worker
  holds before its first step), the clip table's pandera schema, and one and two clips in flight
  (decoder, transform and x264 encoder at the source's size), against ffmpeg's own re-encode.
And per video, the whole `fvc run` and the largest step's peak RSS (its run worker's own VmHWM, from
`cost/peak_rss_mb`: a run worker is not a waited-for child of `fvc run`, so rusage would miss it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._measure import REPO_ROOT, cli, in_subprocess, peak_mb, print_table, timed_command
from benchmarks.sampling import make_video

SIZES = {"480p_10s": ("854x480", 10, "1500k"), "1080p_10s": ("1920x1080", 10, "6M"),
         "1080p_60s": ("1920x1080", 60, "6M")}
STEPS = ("raw_videos", "augmented_videos", "handcrafted_features", "scaled_videos", "scaled_features")
PHASES = ("kernel", "probing", "checks", "previews", "tables", "rest")
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-x264-params", "mbtree=0", "-pix_fmt", "yuv420p"]

# Run inside the instance (DAGSTER_HOME): per step, its start and end, and its materialisation's cost/* metadata.
_STEP_RECORDS = """
import json, dagster as dg
T = dg.DagsterEventType
inst = dg.DagsterInstance.get()
out = {}
for record in inst.get_run_records():
    for r in inst.get_records_for_run(record.dagster_run.run_id,
                                      of_type={T.STEP_START, T.STEP_SUCCESS, T.ASSET_MATERIALIZATION}).records:
        e = r.event_log_entry
        step = out.setdefault(e.step_key, {})
        if e.dagster_event.event_type == T.STEP_START:
            step["start"] = e.timestamp
        elif e.dagster_event.event_type == T.STEP_SUCCESS:
            step["end"] = e.timestamp
        else:
            metadata = e.dagster_event.event_specific_data.materialization.metadata
            step["cost"] = {k: v.value for k, v in metadata.items() if k.startswith("cost/")}
print(json.dumps(out))
"""


def _kernel_one(what: str, spec: str) -> dict:
    """One kernel alone on the run's own inputs, timed in this fresh process."""
    import polars as pl

    args = json.loads(spec)
    root, key = Path(args["data"]), args["key"]
    videos = root / "videos" / key
    started, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as out:
        if what == "stage1":
            from fvc_assets.augment.assets import AugmentConfig
            from fvc_assets.augment.clips import augment_video
            from fvc_resources.video import probe

            facts = probe(args["source"])
            started, cpu = time.perf_counter(), time.process_time()
            augment_video(args["source"], Path(out), video_id=key, label="real", dup_group="g", fps=facts.fps,
                          memory_mb=AugmentConfig().clips_memory_mb)
        elif what == "stage2":
            from fvc_assets.features.extract import video_features
            from fvc_resources.sampling import FrameSamplingResource

            clips = pl.read_parquet(videos / "clips.parquet").to_dicts()
            video_features(clips, root, FrameSamplingResource().count, args["source"])
        elif what == "stage3":
            from fvc_assets.scale.letterbox import scale_clip

            for n, clip in enumerate(sorted((videos / "clips").glob("*.mp4"))):
                scale_clip(clip, Path(out) / f"{n}.mp4")
        else:
            from fvc_assets.features.scaled_assets import scaled_clip_features
            from fvc_resources.sampling import FrameSamplingResource

            for row in pl.read_parquet(videos / "scaled.parquet").to_dicts():
                scaled_clip_features(row, root, FrameSamplingResource().count)
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "peak_mb": peak_mb()}


def _memory_one(spec: str, clips: int) -> dict:
    """Peak RSS of a fresh process that loads the code location, then (clips = -1) the clip table's
    schema, or (clips >= 1) writes that many of stage 1's clips side by side (90 frames each)."""
    import fvc_assets.definitions  # noqa: F401  (what a run worker holds before its first step)

    loaded = peak_mb()
    if clips < 0:
        from fvc_assets.augment.schema import ClipTable  # noqa: F401
    elif clips > 0:
        from fvc_assets.augment.clips import ENCODING_ORDER, augment_video
        from fvc_resources.video import probe

        source = json.loads(spec)["source"]
        # The original (always written) and the costliest augmentations, which stage 1 starts first.
        indices = (ENCODING_ORDER[-1], *ENCODING_ORDER[:clips - 1])
        with tempfile.TemporaryDirectory() as out:
            augment_video(source, Path(out), video_id="m", label="real", dup_group="g", fps=probe(source).fps,
                          max_frames=90, at_once=clips, indices=indices)
    return {"loaded_mb": loaded, "peak_mb": peak_mb()}


def one(what: str, arg: str, n: int) -> dict:
    return _memory_one(arg, n) if what == "memory" else _kernel_one(what, arg)


def memory_floor(spec: str, encode_peak_mb: float) -> list[list[str]]:
    """Stage 1's resident memory, component by component (see _memory_one), in fresh processes."""
    base = in_subprocess("benchmarks.steps", "memory", spec, "0")
    schema = in_subprocess("benchmarks.steps", "memory", spec, "-1")
    one_clip = in_subprocess("benchmarks.steps", "memory", spec, "1")
    two_clips = in_subprocess("benchmarks.steps", "memory", spec, "2")
    loaded = base["peak_mb"]
    return [["code location loaded (a run worker before its first step)", f"{loaded:.0f}", ""],
            ["+ the clip table's pandera schema (loaded after the clips are written)",
             f"{schema['peak_mb']:.0f}", f"{schema['peak_mb'] - loaded:+.0f}"],
            ["+ one clip in flight (decoder, transform, x264)", f"{one_clip['peak_mb']:.0f}",
             f"{one_clip['peak_mb'] - loaded:+.0f}"],
            ["+ two clips in flight (stage 1's default on 2 cores at 1080p)", f"{two_clips['peak_mb']:.0f}",
             f"{two_clips['peak_mb'] - loaded:+.0f}"],
            ["ffmpeg's own re-encode of the source (whole process)", f"{encode_peak_mb:.0f}", ""]]


def ffmpeg_references(source: Path, clips: list[Path]) -> dict[str, float]:
    quiet = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i"]
    with tempfile.TemporaryDirectory() as tmp:
        encode = timed_command([*quiet, str(source), *X264, str(Path(tmp) / "ref.mp4")])
        on_clips = sum(timed_command([*quiet, str(clip), *X264, str(Path(tmp) / "ref.mp4")])["seconds"]
                       for clip in clips)
        scales = sum(timed_command([*quiet, str(clip), "-vf", "scale=256:-2:flags=area", *X264,
                                    str(Path(tmp) / "scaled.mp4")])["seconds"]
                     for clip in clips)
    return {"augmented_videos": 11 * encode["seconds"], "scaled_videos": scales, "encode": encode["seconds"],
            "encode_peak_mb": encode["peak_mb"], "encode_own_clips": on_clips}


def run_one(name: str, video: Path, base: Path) -> tuple[list[list[str]], dict]:
    home, data = base / name / "dagster_home", base / name / "data"
    (data / "inbox").mkdir(parents=True)
    home.mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    shutil.copyfile(video, data / "inbox" / f"{name}.mp4")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_PG_", "MLFLOW_"))}
    env.update(DAGSTER_HOME=str(home), FVC_DATA_DIR=str(data), FVC_INBOX_SETTLE_S="0")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fvc_assets.cli", "run", "--skip-training"], env=env, check=True,
                   capture_output=True)
    whole = time.perf_counter() - started
    steps = json.loads(subprocess.run([sys.executable, "-c", _STEP_RECORDS], env=env, capture_output=True,
                                      text=True, check=True).stdout.strip().splitlines()[-1])
    key = next(p.name for p in (data / "videos").iterdir())
    spec = json.dumps({"data": str(data), "key": key, "source": str(data / "inbox" / f"{name}.mp4")})
    kernels = {step: in_subprocess("benchmarks.steps", stage, spec, "0")["seconds"]
               for step, stage in (("augmented_videos", "stage1"), ("handcrafted_features", "stage2"),
                                   ("scaled_videos", "stage3"), ("scaled_features", "stage4"))}
    references = ffmpeg_references(video, sorted((data / "videos" / key / "clips").glob("*.mp4")))
    memory = memory_floor(spec, references["encode_peak_mb"])
    rows = []
    for step in STEPS:
        record = steps.get(step, {})
        wall = record.get("end", 0.0) - record.get("start", 0.0)
        cost = record.get("cost", {})
        phases = cost.get("cost/phases", {})
        cells = [f"{phases.get(p, {}).get('wall_s', 0):.1f}/{phases.get(p, {}).get('cpu_s', 0):.1f}" for p in PHASES]
        kernel = kernels.get(step)
        reference = references.get(step)
        rows.append([f"{name} {step}", f"{wall:.1f}", f"{cost.get('cost/cpu_s', 0):.1f}", *cells,
                     f"{kernel:.1f}" if kernel else "", f"{kernel / wall:.2f}" if kernel and wall else "",
                     f"{reference:.1f}" if reference else "", f"{reference / wall:.2f}" if reference and wall else "",
                     f"{cost.get('cost/peak_rss_mb', 0):.0f}"])
    peak = max(record.get("cost", {}).get("cost/peak_rss_mb", 0) for record in steps.values())
    stage1 = steps.get("augmented_videos", {})
    stage1_wall = stage1.get("end", 0.0) - stage1.get("start", 0.0)
    return rows, {"whole_s": whole, "peak_mb": peak, "encode_s": references["encode"],
                  "own_clips_s": references["encode_own_clips"], "stage1_wall": stage1_wall, "memory": memory}


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.steps")
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"comma separated, of {', '.join(SIZES)}")
    args = parser.parse_args(sys.argv[1:])
    rows, runs, memory = [], [], []
    with tempfile.TemporaryDirectory(prefix="fvc-bench-steps-") as scratch:
        for name in args.sizes.split(","):
            size, seconds, bitrate = SIZES[name]
            video = make_video(name, size, seconds, bitrate)
            found, run = run_one(name, video, Path(scratch))
            rows += found
            runs.append([name, f"{run['whole_s']:.1f}", f"{run['peak_mb']:.0f}", f"{run['encode_s']:.1f}",
                         f"{run['own_clips_s']:.1f}", f"{11 * run['encode_s'] / run['own_clips_s']:.2f}",
                         f"{run['own_clips_s'] / run['stage1_wall']:.2f}" if run["stage1_wall"] else ""])
            memory += [[f"{name}: {what}", *cells] for what, *cells in run["memory"]]
    print("Each per-video step inside `fvc run --skip-training` (wall s; phases as wall/CPU s), against its kernel "
          "alone and ffmpeg (ratios: reference time / step wall; goals: >= 0.9 x kernel, stage 1 >= 0.75 x "
          "11 ffmpeg encodes, letterbox >= 0.95 x 11 ffmpeg scales)\n")
    print_table(["video, step", "wall", "CPU", *PHASES, "kernel s", "x kernel", "ffmpeg s", "x ffmpeg",
                 "peak MB"], rows)
    print("\nThe whole `fvc run` (start to end) and its largest step's peak RSS (goal <= 400 MB)\n")
    print_table(["video", "fvc run s", "largest step peak RSS MB", "one ffmpeg encode s",
                 "ffmpeg on stage 1's 11 clips s", "stage 1 goal reachable (11 x encode / that)",
                 "stage 1 x that"], runs)
    print("\nStage 1's memory, component by component (peak RSS MB of a fresh process; goal <= 400 MB)\n")
    print_table(["video: process", "peak MB", "vs code location"], memory)


if __name__ == "__main__":
    cli(main, one)
