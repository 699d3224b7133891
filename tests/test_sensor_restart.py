"""The inbox sensor, killed (SIGKILL) and restarted, neither loses a new video nor adds one twice.

A real `dagster-daemon run` on the repo's workspace, with a temporary DAGSTER_HOME (the
project's dagster.yaml plus `concurrency: runs: max_concurrent_runs: 0`, so requested runs
stay QUEUED and nothing is executed) and a temporary FVC_DATA_DIR. The daemon and its code
server run in their own process group, which is SIGKILLed at three points of a tick:

1. as soon as the first registry record exists: the sensor is mid-evaluation, nothing of its
   result has reached the instance yet;
2. after the daemon added the tick's partitions but before it recorded the tick's run
   requests and cursor. That window is a few milliseconds wide, so the test holds the write
   lock of the instance's schedule storage (schedules.db, where ticks live) from the moment
   the sensor starts registering: the daemon adds the partitions (event log storage, not
   locked), then waits on the lock to write the tick, and is killed there;
3. as soon as the first run of a tick exists: the daemon is mid-way through submitting the
   tick's runs.

New videos land in the inbox before each restart. A last daemon then runs until the sensor
skips with "no new videos", and the instance must hold, for every video, one registry record,
one `videos` partition and exactly one submitted (QUEUED) `video_pipeline` run, and nothing else.
"""

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import yaml

import dagster as dg
from dagster._core.scheduler.instigation import InstigatorType, TickStatus
from fvc_assets.ingest.registration import load_registry
from fvc_assets.jobs import VIDEO_PIPELINE_JOB
from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME
from tests.conftest import REPO_ROOT, encode_video
from tests.daemon_harness import kill_group, start_daemon, tail, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SENSOR = "inbox_sensor"
PARTITION_TAG = "dagster/partition"
# Relative paths in the inbox, by the batch that lands before each daemon start. `fake/a1.mp4`
# shares its stem with `a1.mp4`, so it gets a hash-suffixed key.
BATCHES = [
    ["a1.mp4", "a2.mp4", "fake/a1.mp4", "fake/a3.mp4"],
    ["b1.mp4", "fake/b2.mp4"],
    ["c1.mp4", "fake/c2.mp4"],
]
SPARES = [["d1.mp4"], ["fake/d2.mp4"]]  # land only for a second try at kill 2


def count_records(registry: Path) -> int:
    """Registry records, counted cheaply enough to poll every few milliseconds."""
    try:
        return sum(1 for e in os.scandir(registry) if e.name.endswith(".json") and not e.name.startswith("."))
    except FileNotFoundError:
        return 0


class Observer:
    """What the instance and the data root hold, read from the test process."""

    def __init__(self, instance: dg.DagsterInstance, data: Path):
        self.instance, self.data = instance, data

    def registry(self) -> dict:
        return load_registry(self.data / "registry")

    def partitions(self) -> set[str]:
        return set(self.instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME))

    def runs(self) -> list[dg.DagsterRun]:
        """Every run with a partition (the sensor's are `video_pipeline` runs of one video each)."""
        return [run for run in self.instance.get_runs() if PARTITION_TAG in run.tags]

    def ticks(self, after: float | None = None) -> list:
        """The inbox sensor's ticks, newest first."""
        states = [s for s in self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
                  if s.name == SENSOR]
        if not states:
            return []
        return list(self.instance.get_ticks(states[0].instigator_origin_id, states[0].selector_id, after=after))

    def snapshot(self) -> dict:
        runs = self.runs()
        return {"registry": len(self.registry()), "partitions": len(self.partitions()), "runs": len(runs),
                "runs_not_submitted": sum(r.status == dg.DagsterRunStatus.NOT_STARTED for r in runs)}


def land(staging: Path, inbox: Path, names: list[str], landed: list[str]) -> None:
    """Move encoded videos into the inbox, each with one rename (whole files only)."""
    for name in names:
        (inbox / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).rename(inbox / name)
        landed.append(name)


def instance_home(root: Path) -> Path:
    home = root / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((REPO_ROOT / "dagster_home" / "dagster.yaml").read_text())
    config["run_coordinator"] = {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}
    # "Set to 0 to stop any runs from launching": the daemon queues the sensor's runs, runs none.
    config.setdefault("concurrency", {})["runs"] = {"max_concurrent_runs": 0}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


@pytest.fixture
def daemons():
    """Every daemon the test starts; whatever is still alive is SIGKILLed (by process group) at teardown."""
    started: list[subprocess.Popen] = []
    yield started
    for daemon in started:
        kill_group(daemon)


def test_sigkilled_and_restarted_sensor_loses_no_video_and_adds_none_twice(tmp_path, monkeypatch, daemons):
    began = time.monotonic()
    home, data = instance_home(tmp_path), tmp_path / "data"
    inbox, staging, log = data / "inbox", tmp_path / "staging", tmp_path / "dagster-daemon.log"
    inbox.mkdir(parents=True)
    for seed, name in enumerate(n for batch in [*BATCHES, *SPARES] for n in batch):
        encode_video(staging / name, frames=8, width=64, height=48, seed=seed)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FVC_DATA_DIR", str(data))
    instance = dg.DagsterInstance.get()
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    seen = Observer(instance, data)
    kills: list[dict] = []
    landed: list[str] = []

    def daemon():
        process = start_daemon(home, data, log)
        daemons.append(process)
        return process

    # 1. Killed mid-evaluation: the first registry record exists, nothing else of the tick does.
    land(staging, inbox, BATCHES[0], landed)
    first = daemon()
    wait_until(lambda: count_records(data / "registry"), 180, "the sensor's first registry record", first, log,
               interval=0.002)
    kill_group(first)
    kills.append({"where": "first registry record written (mid-evaluation)", **seen.snapshot()})

    # 2. Killed after the partitions were added, before the tick recorded its run requests. The
    # lock is taken within milliseconds of the first new registry record (about 0.1 s before the
    # daemon adds the partitions here); should it still come late, a spare video gives another try.
    schedules_db = home / "schedules" / "schedules.db"
    assert schedules_db.exists()
    for names in [BATCHES[1], *SPARES]:
        land(staging, inbox, names, landed)
        before = count_records(data / "registry")
        second = daemon()
        wait_until(lambda: count_records(data / "registry") > before, 180, "the daemon to register new videos",
                   second, log, interval=0.002)
        lock = sqlite3.connect(schedules_db, timeout=30)
        try:
            lock.execute("BEGIN IMMEDIATE")  # no tick can be written until we roll back
            wait_until(lambda: set(seen.registry()) <= seen.partitions(), 60,
                       "the tick's partitions while its tick write waits", second, log)
            kill_group(second)
        finally:
            lock.rollback()
            lock.close()
        latest = seen.ticks()[0]
        in_window = latest.status == TickStatus.STARTED and not latest.run_requests
        kills.append({"where": "partitions added, tick's run requests not recorded" if in_window
                      else "lock came late: the tick had recorded its run requests", **seen.snapshot()})
        if in_window:
            break
    else:
        pytest.fail(f"no kill landed between the partitions and the run requests: {kills}")

    # 3. Killed mid-submission: the tick's first run exists.
    land(staging, inbox, BATCHES[2], landed)
    runs_before = len(seen.runs())
    third = daemon()
    wait_until(lambda: len(seen.runs()) > runs_before, 180, "the third daemon's first run", third, log)
    kill_group(third)
    kills.append({"where": "first run of the tick created (mid-submission)", **seen.snapshot()})

    # 4. Restarted for good: runs until the sensor finds nothing new.
    last_start = time.time()
    last = daemon()

    def settled():
        return [t for t in seen.ticks(after=last_start)
                if t.status == TickStatus.SKIPPED and "no new videos" in (t.skip_reason or "")]

    wait_until(settled, 180, "a 'no new videos' tick after the last restart", last, log)
    kill_group(last, signal.SIGTERM)
    runtime = time.monotonic() - began

    print(f"\n{len(kills)} SIGKILL cycles, then a clean run ({runtime:.0f}s in all):")
    for n, kill in enumerate(kills, 1):
        print(f"  kill {n}: {kill['where']}: {kill['registry']} registry records, {kill['partitions']} partitions, "
              f"{kill['runs']} runs ({kill['runs_not_submitted']} not submitted)")
    print(f"  end: {seen.snapshot()}")

    files = sorted(p.relative_to(inbox).as_posix() for p in inbox.rglob("*.mp4"))
    assert files == sorted(landed)
    registry = seen.registry()
    # One record per file, and one file per record.
    assert sorted(r.relpath for r in registry.values()) == files, tail(log)
    keys = set(registry)
    assert seen.partitions() == keys, tail(log)
    runs = seen.runs()
    by_key: dict[str, list[str]] = {}
    for run in runs:
        by_key.setdefault(run.tags[PARTITION_TAG], []).append(run.run_id)
    assert set(by_key) <= keys, f"runs for keys that are not videos: {set(by_key) - keys}"
    missing = sorted(keys - set(by_key))
    twice = {k: ids for k, ids in by_key.items() if len(ids) > 1}
    assert not missing, f"videos lost (no run): {missing}\nkills: {kills}\n{tail(log)}"
    assert not twice, f"videos run twice: {twice}\nkills: {kills}"
    assert all(r.status == dg.DagsterRunStatus.QUEUED for r in runs), [(r.run_id, r.status) for r in runs]
    assert all(r.job_name == VIDEO_PIPELINE_JOB and r.tags.get("dagster/sensor_name") == SENSOR for r in runs)
    # Every run carries its video's content hash in its run key.
    assert {r.tags["dagster/run_key"] for r in runs} == {f"{k}:{r.sha256[:12]}" for k, r in registry.items()}
