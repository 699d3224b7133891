"""A daemon for as long as ``fvc run`` needs one: the running one, or one it starts and stops by pid."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

QUEUE_DAEMON_TYPE = "QUEUED_RUN_COORDINATOR"
# Held by fvc's queue daemon for its whole life: one per instance, however many `fvc run` start at once.
LOCK_NAME = ".fvc-queue-daemon.lock"
ANOTHER_DAEMON_EXIT = 3
# Daemons write a heartbeat every 30 s; one older than this belongs to a daemon that is gone.
LIVE_HEARTBEAT_SECONDS = 45
# The daemon's own messages and its code servers' (which it replaces every minute, each saying so as it
# goes) are the instance's logs, not the terminal's: `fvc run` prints the runs' outcomes.
LOG_NAME = "logs/fvc-queue-daemon.log"


def daemon_alive(instance: dg.DagsterInstance) -> bool:
    """Does a daemon dequeue this instance's runs (a recent heartbeat of the run queue daemon)?"""
    heartbeat = instance.get_daemon_heartbeats().get(QUEUE_DAEMON_TYPE)
    return heartbeat is not None and time.time() - heartbeat.timestamp < LIVE_HEARTBEAT_SECONDS


def lock_path() -> Path:
    return Path(os.environ["DAGSTER_HOME"]) / LOCK_NAME


def queue_daemon_running() -> bool:
    """Is fvc's queue daemon of this instance running on this machine (its lock is held)?"""
    path = lock_path()
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


class QueueDaemon:
    """Starts fvc_assets.launch.queue_daemon on first need; ``stop()`` ends it (end of its input, then its pid)."""

    def __init__(self, instance: dg.DagsterInstance, workspace_yaml: Path, max_concurrent_runs: int | None,
                 log_level: str = "warning", to_terminal: bool = False):
        self.instance = instance
        self.workspace_yaml = workspace_yaml
        self.max_concurrent_runs = max_concurrent_runs
        self.log_level = log_level
        self.to_terminal = to_terminal  # else its output goes to log_path()
        self.process: subprocess.Popen | None = None

    @staticmethod
    def log_path() -> Path:
        return Path(os.environ["DAGSTER_HOME"]) / LOG_NAME

    def ensure(self) -> None:
        """A daemon serves the queue: ours, another `fvc run`'s, or a full `dagster-daemon`; else start ours."""
        if self.process is not None:
            code = self.process.poll()
            if code is None:
                return
            self.process = None
            if code != ANOTHER_DAEMON_EXIT:
                where = "above" if self.to_terminal else f"in {self.log_path()}"
                raise RuntimeError(f"the run queue daemon exited with code {code}; see its messages {where}")
        if queue_daemon_running() or daemon_alive(self.instance):
            return
        command = [sys.executable, "-m", "fvc_assets.launch.queue_daemon", "--workspace", str(self.workspace_yaml),
                   "--log-level", self.log_level]
        if self.max_concurrent_runs:
            command += ["--max-concurrent-runs", str(self.max_concurrent_runs)]
        output = None
        if not self.to_terminal:
            self.log_path().parent.mkdir(parents=True, exist_ok=True)
            output = open(self.log_path(), "ab")  # noqa: SIM115 — the child holds it; ours closes below
        # Its standard input is a pipe from this process: when this process ends, however, the daemon ends.
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=output,
                                            stderr=subprocess.STDOUT if output else None)
        finally:
            if output:
                output.close()

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        try:
            if process.stdin:
                process.stdin.close()
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # Its last heartbeat would make the next `fvc run` believe a daemon is still there.
        if process.returncode != ANOTHER_DAEMON_EXIT:
            self.instance.wipe_daemon_heartbeats()
