"""``fvc demo-corpus`` then ``fvc run`` against a real Dagster instance, bad inputs included."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl

from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME
from tests.conftest import encode_video, ffmpeg
from tests.demo_run import SMALL

FVC = [sys.executable, "-m", "fvc_assets.cli"]


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def add_bad_inputs(inbox: Path, tmp_path: Path) -> dict[str, str]:
    """Bad files and awkward names; returns {file name: expected reason} for the ones that must fail."""
    (inbox / "zero.mp4").touch()
    (inbox / "random.mp4").write_bytes(os.urandom(20_000))
    good = encode_video(tmp_path / "whole.mp4", frames=40)
    (inbox / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(inbox / "audio only.mp4"))
    for i, name in enumerate(["my video.mp4", "a,b|c.mp4", "clip..v2.mp4", "-dash.mkv", "vidéo.mp4"]):
        encode_video(inbox / name, frames=12, seed=10 + i)
    return {
        "zero.mp4": "empty file (0 bytes)",
        "random.mp4": "not a readable video container",
        "truncated.mp4": "moov atom not found",
        "audio only.mp4": "no video stream (streams found: audio)",
    }


def test_demo_corpus_then_fvc_run(fvc_env, tmp_path):
    home, data = fvc_env
    inbox = data / "inbox"
    env = os.environ.copy()
    made = subprocess.run([*FVC, "demo-corpus", "--out", str(inbox), "--videos", "6", "--seed", "3", *SMALL],
                          env=env, capture_output=True, text=True, check=True)
    assert "wrote 6 videos" in made.stdout
    bad = add_bad_inputs(inbox, tmp_path)
    before = snapshot(inbox)

    run = subprocess.run([*FVC, "run", "--skip-training"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stdout + run.stderr  # bad inputs fail their own partitions
    failed_lines = [line for line in run.stdout.splitlines() if line.startswith("FAILED ")]
    assert len(failed_lines) == len(bad)
    for name, reason in bad.items():
        line = next(line for line in failed_lines if f"{inbox / name}" in line)
        assert reason in line

    assert snapshot(inbox) == before, "fvc run must never modify, add or remove inbox files"
    outside = {p for p in tmp_path.rglob("*") if p.is_file()} - set(data.rglob("*")) - set(home.rglob("*"))
    assert outside == {tmp_path / "whole.mp4"}, "nothing is written outside the data root and DAGSTER_HOME"

    instance = dg.DagsterInstance.get()
    keys = set(instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME))
    assert {"my_video", "a_b_c", "clip.v2", "-dash", "vid_o", "zero", "truncated"} <= keys
    assert len(keys) == 6 + 9
    materialized = instance.get_materialized_partitions(dg.AssetKey("raw_videos"))
    assert materialized == keys - {"zero", "random", "truncated", "audio_only"}

    manifest = pl.read_csv(inbox / "manifest.csv")
    for row in manifest.iter_rows(named=True):
        key = Path(row["path"]).stem
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_videos"), asset_partitions=[key]), limit=1
        ).records
        metadata = records[0].asset_materialization.metadata
        assert metadata["label"].value == row["label"]
        assert metadata["cascade_ids"].value == row["cascade_id"]
        assert metadata["dup_group"].value == f"cascade:{row['cascade_id']}"
        assert metadata["probe"].value["width"] > 0 and metadata["probe"].value["frame_count"] > 0
        assert "data:image/jpeg;base64," in metadata["preview"].value
        assert Path(metadata["preview_path"].value).read_bytes().startswith(b"\x89PNG")
        stored = pl.read_parquet(data / "videos" / key / "raw_video.parquet")
        assert stored["sha256"][0] == hashlib.sha256((inbox / row["path"]).read_bytes()).hexdigest()

    # A second run registers nothing new and re-runs the named partitions only through Dagster;
    # a key that begins with "-" (as YouTube ids do) is a value, not an option.
    again = subprocess.run([*FVC, "run", "--partition", "my_video", "--partition", "-dash"],
                           env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 video partition(s) run, 0 failed, 0 newly registered" in again.stdout

    # A plain run again: only what is not up to date runs, i.e. the four partitions whose last run failed.
    retry = subprocess.run([*FVC, "run", "--skip-training"], env=env, capture_output=True, text=True)
    assert retry.returncode == 1
    assert "video_pipeline: 4 run(s) (its last run" in retry.stdout, retry.stdout + retry.stderr
    assert len(instance.get_runs(dg.RunsFilter(job_name="video_pipeline"))) == 15 + 2 + 4

    # Too few labelled groups for five folds: stage 5 stops at the blocking leakage check, and says why.
    training = subprocess.run([*FVC, "run"], env=env, capture_output=True, text=True, timeout=600)
    assert training.returncode == 1, training.stdout + training.stderr
    failed = [line for line in training.stdout.splitlines() if line.startswith("FAILED catalog")]
    assert len(failed) == 1 and "check no_leakage on folds failed" in failed[0] and "holds no" in failed[0]
    for job in ("train", "compare"):
        assert f"NOT RUN {job}: catalog did not succeed" in training.stdout
    assert not (data / "train").exists(), "no model trains on a split that failed its leakage check"


def test_fvc_run_waits_for_the_run_that_dagsters_run_retries_start():
    """A failed run that Dagster will retry is not an outcome yet: fvc run follows it to its retry."""
    from dagster._core.utils import make_new_run_id

    from fvc_assets.launch.client import WAITING, retry_of

    with dg.instance_for_test(overrides={"run_retries": {"enabled": True, "max_retries": 1}}) as instance:
        run = instance.add_run(dg.DagsterRun(job_name="video_pipeline", run_id=make_new_run_id()))
        instance.report_run_failed(run)  # not a step's failure: the instance's run_retries take it
        run = instance.get_run_by_id(run.run_id)
        assert run.tags.get("dagster/will_retry") == "true"
        assert retry_of(instance, run) is WAITING  # the daemon has not started the retry yet
        retry = instance.add_run(dg.DagsterRun(job_name="video_pipeline", run_id=make_new_run_id(),
                                               tags={"dagster/parent_run_id": run.run_id,
                                                     "dagster/root_run_id": run.run_id}))
        assert retry_of(instance, run) == retry.run_id
    with dg.instance_for_test() as instance:  # no run_retries: a failure is final
        run = instance.add_run(dg.DagsterRun(job_name="video_pipeline", run_id=make_new_run_id()))
        instance.report_run_failed(run)
        assert retry_of(instance, instance.get_run_by_id(run.run_id)) is None
