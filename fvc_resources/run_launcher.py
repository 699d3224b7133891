"""``PreloadedRunLauncher``: Dagster's run launcher for one machine, without a fresh interpreter per run.

Dagster's ``DefaultRunLauncher`` asks the code server to spawn a new Python
process for every run, which imports dagster and the definitions again (about
two seconds here, as long as a small video's whole run). This launcher keeps
one host process (fvc_resources.run_host) that has imported the code location
once, and forks a run worker from it per run. Everything else is Dagster's: the
run queue decides when a run starts, the worker executes it with the job's
configured executor, Terminate in the UI stops it, and run monitoring fails a
run whose worker died (``check_run_worker_health`` reads the worker's pid, host
and start time from the run's tags).

Configured in ``dagster.yaml``::

    run_launcher:
      module: fvc_resources.run_launcher
      class: PreloadedRunLauncher
      config:
        preload_modules: [fvc_assets.definitions]
        preload_for_jobs: {train: [torch, mlflow]}   # imported once, before the job's first run
        threads_per_run: 0   # 0: the machine's cores shared by max_concurrent_runs

A run tagged ``fvc/threads: N`` gets N threads instead (``fvc run`` tags a run it starts alone).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

import psutil

from dagster import _check as check
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, RunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._serdes import ConfigurableClass, ConfigurableClassData, serialize_value
from fvc_resources.run_host import (
    WORKER_HOST_TAG, WORKER_PID_TAG, WORKER_START_TICKS_TAG, WORKER_STARTED_TAG, start_ticks,
)

HOST_START_TIMEOUT_SECONDS = 120
# A launch answers at once, except the first of a job with modules to preload: their imports come first.
LAUNCH_TIMEOUT_SECONDS, PRELOADING_LAUNCH_TIMEOUT_SECONDS = 60, 300
# Math libraries read these when they start their thread pools (in the worker, after the fork).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "POLARS_MAX_THREADS")
# A run's own thread count, over threads_per_run: `fvc run` gives a run it starts alone every core.
THREADS_TAG = "fvc/threads"


def worker_alive(tags: Mapping[str, str]) -> bool | None:
    """Is the run's worker process alive? None when it cannot be told from here (other host, no tags yet)."""
    if WORKER_PID_TAG not in tags or tags.get(WORKER_HOST_TAG) != socket.gethostname():
        return None
    try:
        process = psutil.Process(int(tags[WORKER_PID_TAG]))
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        # A reused pid is another process: it started at another time. Compared in ticks since boot where
        # the worker recorded them: its epoch start time, read again here, can be a second off when the wall
        # clock was adjusted since (a live worker was once failed as gone that way).
        recorded, now = tags.get(WORKER_START_TICKS_TAG, ""), start_ticks(process.pid)
        if recorded.isdigit() and now is not None:
            return int(recorded) == now
        return abs(process.create_time() - float(tags.get(WORKER_STARTED_TAG, "0"))) < 1.0
    except psutil.NoSuchProcess:
        return False
    except (psutil.Error, ValueError):
        return None


class PreloadedRunLauncher(RunLauncher, ConfigurableClass):
    def __init__(self, preload_modules: list[str] | None = None, preload_when_idle: list[str] | None = None,
                 preload_for_jobs: Mapping[str, list[str]] | None = None, threads_per_run: int = 0,
                 inst_data: ConfigurableClassData | None = None):
        self._inst_data = inst_data
        self._preload_modules = list(preload_modules or [])
        self._preload_when_idle = list(preload_when_idle or [])
        self._preload_for_jobs = {job: list(modules) for job, modules in (preload_for_jobs or {}).items()}
        self._threads_per_run = threads_per_run
        self._host: subprocess.Popen | None = None
        self._lock = threading.Lock()
        super().__init__()

    # --- ConfigurableClass -------------------------------------------------------------------------
    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls):
        from dagster import Field, Permissive

        return {
            "preload_modules": Field([str], default_value=[],
                                     description="Modules the host imports once (the code location's module)."),
            "preload_when_idle": Field([str], default_value=[],
                                       description="Modules the host imports between launches (heavy libraries "
                                                   "only some runs use)."),
            "preload_for_jobs": Field(Permissive(), default_value={},
                                      description="Job name -> modules the host imports before forking that job's "
                                                  "first run (its later runs start with them)."),
            "threads_per_run": Field(int, default_value=0,
                                     description="Math-library threads per run; 0 = cores / max_concurrent_runs."),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, **config_value)

    # --- the host ------------------------------------------------------------------------------------
    def start_host(self) -> None:
        """Start the host now rather than at the first launch (a daemon that is about to launch runs calls
        this as it starts: the host's imports then overlap the daemon's own start-up)."""
        with self._lock:
            if self._host is None or self._host.poll() is not None:
                self._host = self._start_host()

    def _start_host(self) -> subprocess.Popen:
        command = [sys.executable, "-m", "fvc_resources.run_host"]
        for module in self._preload_modules:
            command += ["--preload", module]
        for module in self._preload_when_idle:
            command += ["--preload-when-idle", module]
        host = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
        reply = self._read_reply(host, HOST_START_TIMEOUT_SECONDS)
        if not reply.get("ready"):
            raise RuntimeError(f"the run host did not start: {reply}")
        return host

    @staticmethod
    def _read_reply(host: subprocess.Popen, timeout: float) -> dict:
        assert host.stdout is not None
        ready, _, _ = select.select([host.stdout], [], [], timeout)
        line = host.stdout.readline() if ready else b""
        if not line:
            code = host.poll()
            raise RuntimeError(f"the run host (pid {host.pid}) did not answer"
                               + (f": it exited with code {code}" if code is not None else " in time"))
        return json.loads(line)

    def _threads(self, tags: Mapping[str, str] | None = None) -> int:
        asked = (tags or {}).get(THREADS_TAG, "")
        if asked.isdigit() and int(asked) > 0:
            return int(asked)
        if self._threads_per_run:
            return self._threads_per_run
        limit = 0
        try:
            queue = self._instance.get_concurrency_config().run_queue_config
            limit = queue.max_concurrent_runs if queue else 0
        except Exception:  # noqa: BLE001 — an instance without a run queue: no sharing to plan for
            limit = 0
        cores = os.cpu_count() or 1
        return max(1, cores // limit) if limit and limit > 0 else cores

    def _fork_worker(self, run_id: str, job_name: str | None = None, tags: Mapping[str, str] | None = None) -> dict:
        """The host's reply: the worker's pid, and which of the job's modules it started with."""
        preload = self._preload_for_jobs.get(job_name or "", [])
        threads = self._threads(tags)
        request = {
            "run_id": run_id,
            "preload": preload,
            "instance_ref": serialize_value(self._instance.get_ref()),
            "env": {name: str(threads) for name in THREAD_VARIABLES if name not in os.environ},
            "threads": None if "OMP_NUM_THREADS" in os.environ else threads,
        }
        for _attempt in range(2):
            if self._host is None or self._host.poll() is not None:
                self._host = self._start_host()
            assert self._host.stdin is not None
            try:
                self._host.stdin.write((json.dumps(request) + "\n").encode())
                self._host.stdin.flush()
                reply = self._read_reply(
                    self._host, PRELOADING_LAUNCH_TIMEOUT_SECONDS if preload else LAUNCH_TIMEOUT_SECONDS)
            except (BrokenPipeError, RuntimeError):
                self._host = None
                continue
            if reply.get("stale"):  # code changed on disk: a new host imports the new code
                self._host.wait(timeout=30)
                self._host = None
                continue
            return reply
        raise RuntimeError("could not start a run worker: the run host failed twice")

    # --- RunLauncher --------------------------------------------------------------------------------
    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        check.invariant(run.job_code_origin is not None, f"run {run.run_id} has no code origin")
        with self._lock:
            reply = self._fork_worker(run.run_id, run.job_name, run.tags)
        preloaded = reply.get("preloaded") or []
        self._instance.report_engine_event(
            f"Run worker forked (pid {reply['pid']}) from the preloaded run host "
            f"(pid {self._host.pid if self._host else '?'})"
            + (f"; imported for {run.job_name} before it: {', '.join(preloaded)}." if preloaded else "."),
            run,
        )

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        alive = worker_alive(run.tags)
        if not alive:
            return False
        self._instance.report_run_canceling(run)
        # The worker turns SIGTERM into an interrupt: it stops its steps and marks the run canceled.
        os.kill(int(run.tags[WORKER_PID_TAG]), signal.SIGTERM)
        return True

    @property
    def launches_from_code_origin(self) -> bool:
        """A run is forked from its own code origin (``job_code_origin``): the daemon's workspace is
        never asked (fvc_assets.launch.queue_daemon loads none when nothing else needs it)."""
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        alive = worker_alive(run.tags)
        if alive is None:
            # Launched elsewhere, or not yet tagged: nothing here can tell, and nothing is failed for it.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "worker not visible from this host")
        if alive:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"run worker pid {run.tags[WORKER_PID_TAG]} on {run.tags[WORKER_HOST_TAG]} is gone")

    def get_run_worker_debug_info(self, run: DagsterRun, include_container_logs: bool | None = True) -> str | None:
        if WORKER_PID_TAG not in run.tags:
            return None
        return f"run worker: pid {run.tags[WORKER_PID_TAG]} on {run.tags.get(WORKER_HOST_TAG)}"

    def dispose(self) -> None:
        host, self._host = self._host, None
        if host is not None and host.poll() is None:
            assert host.stdin is not None
            host.stdin.close()  # end of input: the host exits, its workers finish their runs
            try:
                host.wait(timeout=1)
            except subprocess.TimeoutExpired:
                # It reads its input between imports only: one of its idle imports (torch: seconds) would
                # hold up the daemon's exit. It holds nothing but imports, and its workers run in their own
                # sessions, so a signal ends the host alone.
                host.terminate()
                try:
                    host.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    host.kill()
