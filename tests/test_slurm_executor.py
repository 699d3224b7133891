"""The SLURM executor against a real single-node cluster (munged, slurmctld, slurmd, sbatch).

One cluster for the session (tests/slurm_fixtures.py), one instance and data root for the
module. The time-limit test needs a minute and a half of SLURM time; its run starts when
the module does and is checked last, so the other tests run meanwhile.
"""

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from tests import slurm_jobs
from tests.slurm_fixtures import REPO_ROOT, wait_for

pytestmark = pytest.mark.timeout(300)

HEALTH = {"check_step_health_interval_seconds": 1, "end_wait_seconds": 15}
SLURM_RUN_CONFIG = {"execution": {"config": HEALTH}}


def launch(job: str, tag: str, run_config: dict | None = None) -> subprocess.Popen:
    """Run a job of tests/slurm_jobs.py in its own process (so it can be interrupted)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.slurm_jobs", job, json.dumps(run_config or SLURM_RUN_CONFIG), f"fvc/test={tag}"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def run_tagged(instance: dg.DagsterInstance, tag: str):
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"fvc/test": tag}))
    return runs[0] if runs else None


def events(instance: dg.DagsterInstance, run_id: str, event_type=None) -> list[dg.EventLogEntry]:
    records = instance.get_records_for_run(run_id, of_type=event_type).records
    return [r.event_log_entry for r in records if r.event_log_entry.dagster_event]


def slurm_jobs_of(instance: dg.DagsterInstance, run_id: str) -> dict[str, list[dict]]:
    """step key -> the SLURM jobs its step-starting events name (id, name, log), in order."""
    jobs: dict[str, list[dict]] = {}
    for entry in events(instance, run_id, dg.DagsterEventType.STEP_WORKER_STARTING):
        metadata = entry.dagster_event.event_specific_data.metadata
        if "slurm_job_id" not in metadata:  # the local executor's step-starting events
            continue
        jobs.setdefault(entry.step_key, []).append({
            "id": metadata["slurm_job_id"].value,
            "name": metadata["slurm_job_name"].value,
            "log": Path(metadata["slurm_log"].value),
        })
    return jobs


def messages(instance, run_id: str, step_key: str | None = None) -> str:
    return "\n".join(e.dagster_event.message or "" for e in events(instance, run_id)
                     if step_key is None or e.step_key == step_key)


def failure_text(instance, run_id: str, step_key: str) -> str:
    entry = next(e for e in events(instance, run_id, dg.DagsterEventType.STEP_FAILURE) if e.step_key == step_key)
    error = entry.dagster_event.step_failure_data.error
    parts = []
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(parts)


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module", autouse=True)
def timeout_run(slurm_env):
    """Started with the module: a step that sleeps past its one-minute SLURM time limit."""
    process = launch("timing_out", "timeout")
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_stage1_runs_every_step_as_a_slurm_job_with_the_local_executors_outputs(slurm_env, slurm_cluster):
    key = slurm_env.partition_key
    video_dir = slurm_env.data / "videos" / key
    with dg.DagsterInstance.get() as instance:
        local = slurm_jobs.execute("stage1", {"execution": {"config": {"multiprocess": {}}}},
                                   {"dagster/partition": key}, instance)
        assert local.success
        assert slurm_jobs_of(instance, local.run_id) == {}  # the local executor submits nothing
        expected = snapshot(video_dir)
        assert {"raw_video.parquet", "clips.parquet"} <= set(expected)
        shutil.rmtree(video_dir)

        result = slurm_jobs.execute("stage1", {"execution": {"config": {"slurm": HEALTH}}},
                                    {"dagster/partition": key}, instance)
        assert result.success, messages(instance, result.run_id)
        assert snapshot(video_dir) == expected, "SLURM and local executors wrote different outputs"

        jobs = slurm_jobs_of(instance, result.run_id)
        assert set(jobs) == {"raw_videos", "augmented_videos"}
        for step_key, (job,) in jobs.items():
            assert job["name"] == f"fvc-{result.run_id[:8]}-{step_key}"
            assert slurm_cluster.final_state(job["id"]) == "COMPLETED"
            assert slurm_cluster.job_field(job["id"], "JobName") == job["name"]
            assert job["log"] == slurm_env.home / "slurm_logs" / result.run_id / f"{step_key}.log"
            assert f"fvc-slurm: job {job['id']} on" in job["log"].read_text()
        assert jobs["raw_videos"][0]["id"] != jobs["augmented_videos"][0]["id"]
        partitions = instance.get_materialized_partitions(dg.AssetKey("augmented_videos"))
        assert key in partitions


def test_a_step_that_raises_fails_its_run_with_its_own_error_and_asks_for_its_resources(slurm_env, slurm_cluster):
    with dg.DagsterInstance.get() as instance:
        result = slurm_jobs.execute("failing", SLURM_RUN_CONFIG, {"slurm/time": "5", "slurm/mem": "2G"}, instance)
        assert not result.success
        assert slurm_jobs.STEP_ERROR in failure_text(instance, result.run_id, "raises")
        (job,) = slurm_jobs_of(instance, result.run_id)["raises"]
        assert slurm_jobs.STEP_ERROR in job["log"].read_text()
        # The op's slurm/* tags became the job's request, over the run's tags.
        assert slurm_cluster.job_field(job["id"], "MinMemoryNode") == "1G"
        assert slurm_cluster.job_field(job["id"], "TimeLimit") == "00:05:00"  # from the run's tag
        assert "gpu:1" in slurm_cluster.job_field(job["id"], "TresPerNode")
        # The step's own error is the whole story: no SLURM reason is added.
        assert "SLURM job" not in messages(instance, result.run_id, "raises").replace("Submitted step as SLURM job", "")


def test_a_job_cancelled_from_outside_fails_its_step_with_the_reason(slurm_env, slurm_cluster):
    process = launch("sleeping", "scancel")
    with dg.DagsterInstance.get() as instance:
        run = wait_for(lambda: run_tagged(instance, "scancel"), 30, "the run")
        wait_for(lambda: events(instance, run.run_id, dg.DagsterEventType.STEP_START), 60, "the step to start")
        (job,) = slurm_jobs_of(instance, run.run_id)["sleeps"]
        # The step's arguments (instance reference, storage config) are in the job's environment,
        # not in what other users of the cluster can read: its command lines and scontrol's view.
        shown = subprocess.run(["scontrol", "show", "job", "-dd", job["id"]], capture_output=True, text=True,
                               check=True).stdout
        command_lines = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        assert "api execute_step" in command_lines  # the step is running here (a one-host cluster)
        secrets = ["compressed-input-json", "DAGSTER_COMPRESSED_EXECUTE_STEP_ARGS", "SqliteRunStorage",
                   "SqliteEventLogStorage"]
        for text in (shown, command_lines):
            assert not [s for s in secrets if s in text], [s for s in secrets if s in text]
        subprocess.run(["scancel", job["id"]], check=True)
        out, _ = process.communicate(timeout=90)
        final = instance.get_run_by_id(run.run_id)
        assert final.status == dg.DagsterRunStatus.FAILURE, out
        text = messages(instance, run.run_id, "sleeps")
        assert f"SLURM job {job['id']} CANCELLED" in text
        assert f"*** JOB {job['id']} ON" in text  # slurmstepd's own notice, quoted from the log
        assert any(e.step_key == "sleeps" for e in events(instance, run.run_id, dg.DagsterEventType.STEP_FAILURE))


def job_info_requests() -> int:
    """slurmctld's own count of job-state requests (sdiag: REQUEST_JOB_INFO and _SINGLE)."""
    import re

    out = subprocess.run(["sdiag"], capture_output=True, text=True, check=True).stdout
    return sum(int(n) for n in re.findall(r"^\s*REQUEST_JOB_INFO(?:_SINGLE)?\s+\(\s*\d+\)\s+count:(\d+)", out,
                                          re.MULTILINE))


def test_health_checks_ask_slurm_once_per_poll_not_once_per_step(slurm_env, slurm_cluster):
    """Six steps waiting in SLURM, checked every second: slurmctld answers one request per poll."""
    config = {"execution": {"config": HEALTH}, "ops": {f"sleeps_{i}": {"config": {"seconds": 6}}
                                                     for i in range(slurm_jobs.SLEEPERS)}}
    before, started = job_info_requests(), time.monotonic()
    out = subprocess.run([sys.executable, "-m", "tests.slurm_jobs", "many_sleepers", json.dumps(config),
                          "fvc/test=polls"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=240).stdout
    seconds, requests = time.monotonic() - started, job_info_requests() - before
    assert json.loads(out.strip().splitlines()[-1])["success"], out
    polls = seconds / HEALTH["check_step_health_interval_seconds"]
    # One request per poll for this run, one for the module's time-limit run polling meanwhile
    # (measured: 123 requests in 66 polls); asked per step, this run alone would make up to six.
    assert requests < 2.5 * polls, (requests, round(polls))


def test_a_retried_step_runs_again_as_a_new_job(slurm_env, slurm_cluster):
    with dg.DagsterInstance.get() as instance:
        result = slurm_jobs.execute("flaky", SLURM_RUN_CONFIG, {}, instance)
        assert result.success, messages(instance, result.run_id)
        first, second = slurm_jobs_of(instance, result.run_id)["fails_first_attempt"]
        assert first["id"] != second["id"]
        assert second["name"] == first["name"] + "-retry1"
        assert second["log"].name == "fails_first_attempt.retry1.log"
        assert "STEP_UP_FOR_RETRY" in first["log"].read_text()
        assert "STEP_SUCCESS" in second["log"].read_text()
        (retry,) = events(instance, result.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY)
        assert "first attempt fails on purpose" in str(retry.dagster_event.event_specific_data.error)
        assert slurm_cluster.final_state(second["id"]) == "COMPLETED"


def test_terminating_the_run_cancels_its_slurm_jobs(slurm_env, slurm_cluster):
    process = launch("sleeping", "terminate")
    with dg.DagsterInstance.get() as instance:
        run = wait_for(lambda: run_tagged(instance, "terminate"), 30, "the run")
        wait_for(lambda: events(instance, run.run_id, dg.DagsterEventType.STEP_START), 60, "the step to start")
        (job,) = slurm_jobs_of(instance, run.run_id)["sleeps"]
        assert job["id"] in slurm_cluster.squeue_ids()
        # What Dagster's run launcher does on "Terminate": mark the run canceling, interrupt its process.
        instance.report_run_canceling(run)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED, out
        assert f"Cancelling SLURM job {job['id']}" in messages(instance, run.run_id, "sleeps")
        wait_for(lambda: job["id"] not in slurm_cluster.squeue_ids(), 30, "the job to leave the queue")
        assert slurm_cluster.job_field(job["id"], "JobState") == "CANCELLED"


def test_a_job_past_its_time_limit_fails_with_timeout(slurm_env, slurm_cluster, timeout_run):
    out, _ = timeout_run.communicate(timeout=240)
    with dg.DagsterInstance.get() as instance:
        run = run_tagged(instance, "timeout")
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE, out
        (job,) = slurm_jobs_of(instance, run.run_id)["sleeps_past_time_limit"]
        assert slurm_cluster.job_field(job["id"], "JobState") == "TIMEOUT"
        assert slurm_cluster.job_field(job["id"], "TimeLimit") == "00:01:00"
        text = messages(instance, run.run_id, "sleeps_past_time_limit")
        assert f"SLURM job {job['id']} TIMEOUT" in text
        assert "DUE TO TIME LIMIT" in text


def test_fvc_run_with_a_slurm_run_config_runs_a_batch_as_one_slurm_job_per_step(slurm_env, slurm_cluster, tmp_path):
    """`fvc run` honours the executor: each stage of a batch is one queued run over both videos, each of its
    steps one SLURM job that runs both; the outputs match a local run's."""
    import yaml

    from tests.conftest import encode_video

    key = slurm_env.partition_key
    video_dir = slurm_env.data / "videos" / key
    config = tmp_path / "slurm.yaml"
    config.write_text(yaml.safe_dump({"execution": {"config": {"slurm": HEALTH}}}))
    encode_video(slurm_env.data / "inbox" / "fake" / "slurm clip 2.mp4", frames=12, width=96, height=64, seed=5)
    fvc = [sys.executable, "-m", "fvc_assets.cli", "run", "--skip-training", "--partition", key]
    local = subprocess.run(fvc, capture_output=True, text=True, timeout=600)  # also registers the second video
    assert local.returncode == 0, local.stdout + local.stderr
    assert "executor: in_process" in local.stdout
    expected = snapshot(video_dir)
    shutil.rmtree(video_dir)

    with dg.DagsterInstance.get() as instance:
        order = instance.get_dynamic_partitions("videos")
    assert order[:2] == [key, "slurm_clip_2"]
    batch = [*fvc, "--partition", "slurm_clip_2", "--batch-above", "1", "--jobs", "1", "--run-config", str(config)]
    done = subprocess.run(batch, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "executor: slurm" in done.stdout and "2 video(s) in 1 batch(es)" in done.stdout, done.stdout
    assert snapshot(video_dir) == expected, "SLURM and local runs wrote different outputs"
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/asset_partition_range_start": key}))
        assert sorted(r.job_name for r in runs) == ["augment", "features", "ingest", "scale"]
        jobs = {}
        for run in runs:
            assert run.tags["dagster/asset_partition_range_end"] == "slurm_clip_2"
            assert run.tags.get("fvc/launched_by") == "fvc run"
            jobs.update(slurm_jobs_of(instance, run.run_id))
        for asset in ("raw_videos", "scaled_features"):
            assert {key, "slurm_clip_2"} <= instance.get_materialized_partitions(dg.AssetKey(asset))
    assert set(jobs) == {"raw_videos", "augmented_videos", "handcrafted_features", "scaled_videos",
                         "scaled_features"}
    for step_jobs in jobs.values():
        (job,) = step_jobs  # one SLURM job per step, for both videos
        assert slurm_cluster.final_state(job["id"]) == "COMPLETED"


def test_fvc_run_refuses_a_slurm_configuration_when_slurm_does_not_answer(slurm_env, tmp_path):
    """Never runs locally instead: it stops before submitting anything and says why."""
    import os

    # A cluster whose controller is not there (port 1): scontrol answers "DOWN" at once.
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=nowhere\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=1\nAuthType=auth/none\n"
                    "NodeName=n1 CPUs=1\nPartitionName=p Nodes=n1\n")
    env = {**os.environ, "SLURM_CONF": str(conf), "FVC_EXECUTOR": "slurm"}
    def fvc_runs(instance):  # the module's background timing_out run may start meanwhile
        return [run for run in instance.get_runs() if run.job_name != "timing_out"]

    with dg.DagsterInstance.get() as instance:
        before = len(fvc_runs(instance))
    done = subprocess.run([sys.executable, "-m", "fvc_assets.cli", "run", "--skip-training"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "the executor is slurm, but SLURM is not reachable from here" in done.stderr, done.stdout + done.stderr
    assert "Nothing was submitted" in done.stderr
    with dg.DagsterInstance.get() as instance:
        assert len(fvc_runs(instance)) == before
