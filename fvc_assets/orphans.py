"""Runs whose process died: ``fvc run`` marks them failed and gives back their pool slots.

A run executed in a process (``fvc run`` runs each partition in-process) that is
killed — SIGKILL, the OOM killer, a power cut — stays STARTED in the instance for
ever, and so do the concurrency slots its steps held: with the ``gpu`` pool at
one slot, every later stage-3 or training step would wait for a slot nobody will
give back. Each run ``fvc run`` starts carries its process's pid, host and start
time as tags; before running anything, ``fvc run`` fails the runs whose process is
gone and frees their slots.
"""

import os
import socket

import psutil

import dagster as dg

PID_TAG = "fvc/pid"
HOST_TAG = "fvc/host"
STARTED_TAG = "fvc/process_started"
LIVE_STATUSES = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def process_tags() -> dict[str, str]:
    """Tags naming the process that executes a run in-process (so a later one can tell it died)."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(),
            STARTED_TAG: f"{psutil.Process().create_time():.3f}"}


def process_alive(tags: dict[str, str]) -> bool:
    """Is the run's process still the one that started it? Unknown host or no tags: assume alive."""
    if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname():
        return True
    try:
        process = psutil.Process(int(tags[PID_TAG]))
        alive = process.status() != psutil.STATUS_ZOMBIE
        # A reused pid is another process: its start time differs (1 s tolerance for clock adjustments).
        return alive and abs(process.create_time() - float(tags.get(STARTED_TAG, "0"))) < 1.0
    except psutil.NoSuchProcess:
        return False
    except (psutil.Error, ValueError):  # cannot tell (permissions, odd tag): never fail a live run
        return True


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark this host's dead in-process runs failed, free their concurrency slots; their run ids."""
    orphaned = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=LIVE_STATUSES)):
        run = record.dagster_run
        if process_alive(run.tags):
            continue
        instance.report_run_failed(
            run, f"the process that ran it (pid {run.tags[PID_TAG]} on {run.tags[HOST_TAG]}) is gone; "
                 "marked failed by the next `fvc run`")
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        orphaned.append(run.run_id)
    return orphaned
