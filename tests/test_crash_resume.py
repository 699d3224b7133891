"""Run workers (the step processes of `fvc run`'s queued runs) killed with SIGKILL in the middle of
writing leave nothing a later step would read as valid; Dagster's run monitoring fails their runs;
running again completes the partition with the same bytes as an uninterrupted run; a training fold
resumes from its checkpoint; two runs of one partition never corrupt it."""

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import dagster as dg

from fvc_resources.run_host import (
    WORKER_HOST_TAG, WORKER_PID_TAG, WORKER_START_TICKS_TAG, WORKER_STARTED_TAG, worker_tags,
)
from fvc_resources.run_launcher import worker_alive
from fvc_resources.atomic import CRASH_POINT_ENV
from fvc_resources.locks import exclusive_writer
from tests.conftest import REPO_ROOT, encode_video
from tests.train_data import clip_catalog

pytestmark = pytest.mark.timeout(1500)
FVC = str(Path(sys.executable).parent / "fvc")
KEY = "victim"
# A small victim: each of the cycles below is a whole `fvc run` of it, and what they test (where a kill
# lands, what stays visible) does not depend on its size. Stage 1 still writes 11 clips one after another,
# so an encoder's temp file is there to be caught growing (the stage 1 and 3 cycles poll every 5 ms).
VICTIM_FRAMES = 30


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every visible file (temp files start with '.' and are not outputs)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*.tmp-*") if p.is_file()]


def growing_temp_in(folder: Path):
    """True once an encoder's temp file in ``folder`` holds data: the kill lands mid-write."""
    def check() -> bool:
        return folder.is_dir() and any(p.stat().st_size > 0 for p in folder.glob(".*.tmp-*"))
    return check


@contextlib.contextmanager
def instance_of(env: dict):
    """The instance at env's DAGSTER_HOME (its dagster.yaml reads DAGSTER_HOME from the environment)."""
    old = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        with dg.DagsterInstance.get() as instance:
            yield instance
    finally:
        if old is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = old


def started_workers(env: dict) -> list[int]:
    """Pids of the run workers of this instance's STARTED runs."""
    with instance_of(env) as instance:
        runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        return [int(r.tags[WORKER_PID_TAG]) for r in runs if WORKER_PID_TAG in r.tags]


MULTIPROCESS = {"execution": {"config": {"multiprocess": {}}}}


def fvc_run(env: dict, *, kill_when=None, crash_point: str | None = None, timeout: float = 600,
            run_config: dict | None = None):
    """`fvc run --skip-training --partition victim`; its run worker SIGKILLed when ``kill_when()`` turns true.

    Returns (return code, killed from outside, output)."""
    env = dict(env)
    if crash_point:
        env[CRASH_POINT_ENV] = crash_point
    command = [FVC, "run", "--skip-training", "--jobs", "2", "--partition", KEY]
    if run_config:
        config = Path(env["FVC_DATA_DIR"]).parent / "run_config.json"
        config.write_text(json.dumps(run_config))  # YAML reads JSON
        command += ["--run-config", str(config)]
    process = subprocess.Popen(command, env=env, cwd=env["FVC_DATA_DIR"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    killed = False
    while process.poll() is None and time.monotonic() < deadline:
        if kill_when is not None and not killed and kill_when():
            workers = started_workers(env)
            assert len(workers) == 1, workers
            os.kill(workers[0], signal.SIGKILL)  # the step process, mid-write; fvc run carries on
            killed = True
        time.sleep(0.005)
    if process.poll() is None and not killed:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"fvc run did not finish in {timeout}s")
    output = process.communicate()[0].decode(errors="replace")
    return process.returncode, killed, output


@pytest.fixture(scope="module")
def partition(tmp_path_factory):
    """A registered video, its uninterrupted outputs (hashes), and the env to run it in."""
    base = tmp_path_factory.mktemp("crash")
    home, data = base / "dagster_home", base / "data"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    encode_video(data / "inbox" / "fake" / f"{KEY}.mp4", frames=VICTIM_FRAMES, width=160, height=120, fps=25)
    env = {**os.environ, "DAGSTER_HOME": str(home), "FVC_DATA_DIR": str(data)}
    env.pop(CRASH_POINT_ENV, None)
    code, _, output = fvc_run(env)
    assert code == 0, output
    video_dir = data / "videos" / KEY
    reference = file_hashes(video_dir)
    assert {"clips.parquet", "handcrafted_features.parquet", "scaled.parquet", "scaled_features.parquet",
            "raw_video.parquet", "clips/original.mp4", "scaled/original.mp4"} <= set(reference)
    return env, video_dir, reference


# Where each cycle's kill lands: an encoder's temp file growing (killed from outside), or the
# step itself at the moment between a finished temp file and its rename.
KILL_CYCLES = [
    ("stage 1 clip, mid-encode", {"kill_dir": "clips"}),
    ("stage 1 clip table", {"crash_point": "clips.parquet"}),
    ("stage 2 feature parquet", {"crash_point": "handcrafted_features.parquet"}),
    ("stage 3 clip, mid-encode", {"kill_dir": "scaled"}),
    ("stage 3 clip, before rename", {"crash_point": "*.mp4#14"}),  # 11 stage-1 clips, then the 3rd scaled
    ("stage 4 feature parquet", {"crash_point": "scaled_features.parquet"}),
    # Under the multiprocess executor the step runs in a process of its own, a child of the run worker:
    # that step process dies; the worker lives on and fails the step, and with it the run.
    ("stage 2 parquet, step process", {"crash_point": "handcrafted_features.parquet", "run_config": MULTIPROCESS}),
]


def test_killed_steps_leave_no_valid_looking_partial_output_and_a_rerun_restores_every_byte(partition):
    env, video_dir, reference = partition
    shutil.rmtree(video_dir)
    report = []
    for where, how in KILL_CYCLES:
        kill_when = growing_temp_in(video_dir / how["kill_dir"]) if "kill_dir" in how else None
        code, killed, output = fvc_run(env, kill_when=kill_when, crash_point=how.get("crash_point"),
                                       run_config=how.get("run_config"))
        # The worker died (killed from outside, or by itself at a crash point): Dagster's run monitoring
        # marks its run failed, and `fvc run` reports it and exits 1. A step process that died fails its
        # step in the worker.
        assert code == 1, f"{where}: the step was not killed ({code}): {output[-2000:]}"
        failed = [line for line in output.splitlines() if line.startswith(f"FAILED {KEY} ")]
        assert len(failed) == 1, output[-2000:]
        if "run_config" in how:
            assert "child process for step handcrafted_features was terminated by signal 9 (SIGKILL)" in failed[0], failed
        else:
            assert "Detected run worker status FAILED" in failed[0] and "is gone" in failed[0], failed
        with instance_of(env) as instance:
            assert not instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])), \
                "no run is left STARTED"
        left = temp_files(video_dir)
        # Every output visible under its real name is exactly the uninterrupted run's.
        visible = file_hashes(video_dir)
        wrong = [name for name, digest in visible.items() if reference.get(name) != digest]
        assert not wrong, f"{where}: partial or different outputs visible: {wrong}"
        report.append((where, len(visible), len(reference), len(left)))
    code, _, output = fvc_run(env)
    assert code == 0, output
    assert file_hashes(video_dir) == reference
    assert temp_files(video_dir) == [], "the rerun swept the temp files of the killed writers"
    print("\nkill cycle | outputs visible / expected | temp files left")
    for row in report:
        print(" | ".join(map(str, row)))


def test_a_second_run_of_a_partition_being_written_fails_naming_the_holder(partition):
    env, video_dir, reference = partition
    lock = Path(env["FVC_DATA_DIR"]) / "locks" / "augmented_videos" / f"{KEY}.lock"
    with exclusive_writer(lock, "run 0000-test-holder, pid 1 on here", "augmented_videos"):
        code, _, output = fvc_run(env)
    assert code == 1
    assert f"augmented_videos partition '{KEY}' is being written by another run (run 0000-test-holder" in output
    assert file_hashes(video_dir) == reference


def test_two_concurrent_runs_of_one_partition_leave_it_whole(partition):
    env, video_dir, reference = partition
    shutil.rmtree(video_dir)
    runs = [subprocess.Popen([FVC, "run", "--skip-training", "--jobs", "2", "--partition", KEY], env=env, cwd=env["FVC_DATA_DIR"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    outputs = [(r.wait(timeout=600), r.stdout.read().decode(errors="replace")) for r in runs]
    print("\nconcurrent runs' exit codes:", [code for code, _ in outputs])
    for code, output in outputs:
        # Each run either did the work or stopped at a step the other one held, and said so.
        assert code == 0 or "is being written by another run" in output, output[-3000:]
    if not all(code == 0 for code, _ in outputs):
        code, _, output = fvc_run(env)  # what a user does after a clash: run it again
        assert code == 0, output
    assert file_hashes(video_dir) == reference
    assert temp_files(video_dir) == []


@pytest.fixture(scope="module")
def training_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_crash")
    catalog, folds = clip_catalog(root)
    catalog.write_parquet(root / "catalog.parquet")
    folds.write_parquet(root / "folds.parquet")
    return root


def train(root: Path, workdir: Path, crash_point: str | None = None):
    env = {k: v for k, v in os.environ.items() if k != CRASH_POINT_ENV}
    if crash_point:
        env[CRASH_POINT_ENV] = crash_point
    result = workdir.with_suffix(".json")
    result.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, str(REPO_ROOT / "tests" / "crash_train_fold.py"), str(root),
                           str(workdir), str(result)], env=env, capture_output=True, text=True, timeout=600)
    return done.returncode, (json.loads(result.read_text()) if result.exists() else None), done.stdout + done.stderr


def test_a_fold_killed_while_saving_resumes_from_its_last_checkpoint(training_data, tmp_path):
    code, whole, output = train(training_data, tmp_path / "whole")
    assert code == 0 and whole["resumed_from_epoch"] == 0, output

    # Killed while writing the checkpoint of epoch 2: epoch 1's checkpoint is what survives.
    cut = tmp_path / "cut"
    code, result, _ = train(training_data, cut, crash_point="checkpoint.pt#2")
    assert code == -signal.SIGKILL and result is None
    assert (cut / "checkpoint.pt").exists() and not (cut / "model.pt").exists()
    left = temp_files(cut)  # train_fold leaves the sweep to the Dagster step's writer lock
    assert len(left) == 1 and left[0].name.startswith(".checkpoint.tmp-"), left
    code, resumed, output = train(training_data, cut)
    assert code == 0 and resumed["resumed_from_epoch"] == 1, output
    assert resumed["clip_ids"] == whole["clip_ids"]
    assert np.allclose(resumed["scores"], whole["scores"], atol=1e-5)

    # Killed while writing the model file after the last epoch: the rerun trains nothing again.
    late = tmp_path / "late"
    code, result, _ = train(training_data, late, crash_point="model.pt")
    assert code == -signal.SIGKILL and not (late / "model.pt").exists()
    assert not (late / "predictions.parquet").exists()
    code, resumed, output = train(training_data, late)
    assert code == 0 and resumed["resumed_from_epoch"] == 3, output
    assert np.allclose(resumed["scores"], whole["scores"], atol=1e-5)
    assert (late / "model.pt").exists() and pl.read_parquet(late / "predictions.parquet").height > 0


def test_a_run_worker_is_dead_once_its_pid_is_gone_or_reused():
    mine = worker_tags()
    assert worker_alive(mine) is True
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert worker_alive({**mine, WORKER_PID_TAG: finished.stdout.strip()}) is False
    reused = str(int(mine[WORKER_START_TICKS_TAG]) + 100)
    assert worker_alive({**mine, WORKER_START_TICKS_TAG: reused}) is False  # same pid, another process
    # The wall clock was adjusted since the worker tagged itself: its epoch start reads a second off, and it
    # is still the same process (the ticks since boot did not move).
    moved = f"{float(mine[WORKER_STARTED_TAG]) + 1.0:.3f}"
    assert worker_alive({**mine, WORKER_STARTED_TAG: moved}) is True
    # Tagged by a worker that recorded no ticks: the epoch start, to within a second.
    epoch_only = {k: v for k, v in mine.items() if k != WORKER_START_TICKS_TAG}
    assert worker_alive(epoch_only) is True
    assert worker_alive({**epoch_only, WORKER_STARTED_TAG: "1.000"}) is False
    assert worker_alive({**mine, WORKER_HOST_TAG: "another-host"}) is None  # cannot tell from here
    assert worker_alive({}) is None  # not yet tagged


def test_a_killed_fvc_run_leaves_no_run_started_once_monitoring_has_passed(partition):
    """fvc run, its daemon and the run's worker all SIGKILLed: the next fvc run's daemon fails that run."""
    env, video_dir, reference = partition
    shutil.rmtree(video_dir)
    process = subprocess.Popen([FVC, "run", "--skip-training", "--partition", KEY], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not started_workers(env) and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = started_workers(env)
    assert workers, "the run never started"
    os.killpg(process.pid, signal.SIGKILL)  # the client and the daemon it started
    os.kill(workers[0], signal.SIGKILL)  # and the run worker (it would otherwise finish its run)
    process.wait()
    with instance_of(env) as instance:
        (stuck,) = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    code, _, output = fvc_run(env)  # its daemon's run monitoring finds the dead worker
    assert code == 0, output
    with instance_of(env) as instance:
        run = instance.get_run_by_id(stuck.run_id)
        assert run.status == dg.DagsterRunStatus.FAILURE
        assert not instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    assert file_hashes(video_dir) == reference


@pytest.mark.parametrize("asset_name, partition", [
    ("fold_results", {"model": "logistic_regression", "fold": "2"}),
    ("ensemble_results", "3"),
    ("video_catalog", None),
    ("folds", None),
    ("model_comparison", None),
    ("cross_manipulation", None),
    ("scaled_videos", "some_video"),
])
def test_every_writing_asset_refuses_a_second_writer(asset_name, partition, tmp_path, monkeypatch):
    """The lock comes before anything else the step does, for stage 5 as for the per-video stages."""
    import dagster as dg

    from fvc_assets.definitions import defs
    from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME
    from fvc_assets.steps.sole_writer import lock_name

    monkeypatch.setenv("FVC_DATA_DIR", str(tmp_path / "data"))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, ["some_video"])
    key = dg.MultiPartitionKey(partition) if isinstance(partition, dict) else partition
    lock = tmp_path / "data" / "locks" / asset_name / f"{lock_name(str(key) if key else 'all')}.lock"
    job = defs.resolve_implicit_global_asset_job_def()
    with exclusive_writer(lock, "run other-run, pid 1 on here", asset_name):
        result = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey(asset_name)],
                                        partition_key=key, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    description = failure.step_failure_data.user_failure_data.description
    assert "is being written by another run (run other-run, pid 1 on here)" in description


def test_a_writer_sweeps_only_its_own_stale_temp_files(tmp_path):
    from fvc_resources.atomic import remove_stale_temps

    (tmp_path / "clips").mkdir()
    mine = [tmp_path / ".clips.tmp-abc123.parquet", tmp_path / "clips" / ".original.tmp-x1.mp4"]
    others = [tmp_path / ".handcrafted_features.tmp-def456.parquet", tmp_path / "clips.parquet",
              tmp_path / "clips" / "original.mp4"]
    for path in mine + others:
        path.write_bytes(b"x")
    removed = remove_stale_temps(tmp_path / "clips.parquet", tmp_path / "clips")
    assert sorted(removed) == sorted(mine)
    assert all(p.exists() for p in others) and not any(p.exists() for p in mine)
