"""Scoring processes behind a job queue: one driver thread per process.

Each driver takes a job, hands it to its process and waits at most until the job's
deadline. A process that overruns is killed and replaced; one that dies (a decoder
crash, an out-of-memory kill) fails only its own job. When the model in service changes,
each driver replaces its process between jobs, so requests in flight finish on the model
they started with.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import shutil
import signal
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fvc_assets.serve.served_model import ServedModel

STOP = object()
LOAD_TIMEOUT_S = 300.0  # loading a large frame model's five folds on a busy node
RETRY_LOAD_S = 30.0  # a version that failed to load is tried again after this long, not in a loop


@dataclass
class Job:
    path: str  # what the worker opens (an upload is /proc/<server pid>/fd/<n>)
    name: str  # what the answer calls it
    operating_point: str
    max_duration_s: float
    deadline: float  # time.monotonic() by which the answer is due
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    future: Future = field(default_factory=Future)

    def message(self) -> dict:
        return {"id": self.id, "path": self.path, "name": self.name, "operating_point": self.operating_point,
                "max_duration_s": self.max_duration_s}


def failure(status: int, reason: str) -> dict:
    return {"ok": False, "status": status, "reason": reason}


class ScoringProcess:
    """One worker process holding one version of the model."""

    def __init__(self, model: ServedModel, root: Path, work_root: Path, threads: int):
        from fvc_assets.serve.worker import worker_main

        self.version = model.version
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        payload = {**asdict(model), "train_dir": str(model.train_dir)}
        self.process = context.Process(target=worker_main, daemon=True, name=f"fvc-serve-{model.version}",
                                       args=(child, payload, str(root), str(work_root), os.getpid(), threads))
        self.process.start()
        child.close()
        self.error = ""
        if not self.conn.poll(LOAD_TIMEOUT_S):
            self.error = f"the model did not load within {LOAD_TIMEOUT_S:g} s"
        else:
            try:
                hello = self.conn.recv()
                self.error = "" if hello.get("ready") else hello.get("error", "the model did not load")
            except EOFError:
                self.error = f"the scoring process ended while loading the model ({self.ended()})"
        if self.error:
            self.stop()

    @property
    def ready(self) -> bool:
        return not self.error and self.process.is_alive()

    def ended(self) -> str:
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is None:
            return "still running"
        return f"killed by signal {-code}" if code < 0 else f"exit status {code}"

    def run(self, job: Job) -> dict:
        """The worker's answer, or a failure when it overran the deadline or died."""
        try:
            self.conn.send(job.message())
            if self.conn.poll(max(0.0, job.deadline - time.monotonic())):
                return self.conn.recv()
        except (EOFError, OSError):
            return failure(500, f"the scoring process ended while scoring this video ({self.ended()}); "
                                "the service goes on with a new one")
        self.kill()
        return failure(504, "scoring did not finish within the request's time limit")

    def kill(self) -> None:
        if self.process.is_alive():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(timeout=10)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(timeout=5)
        self.kill()


class WorkerPool:
    def __init__(self, model: ServedModel, root: Path, work_root: Path, workers: int, threads: int = 1):
        self.model, self.root, self.work_root, self.threads = model, root, work_root, threads
        self.jobs: queue.Queue = queue.Queue()
        self.processes: list[ScoringProcess | None] = [None] * workers
        self.errors: list[str] = [""] * workers
        self.failed: list[tuple[str, float] | None] = [None] * workers  # (version, when) of the last failed load
        self.closing = threading.Event()
        self.drivers = [threading.Thread(target=self._drive, args=(slot,), daemon=True, name=f"fvc-serve-{slot}")
                        for slot in range(workers)]
        self.mean_job_s = 1.0  # running mean of job times, for Retry-After

    def start(self) -> None:
        for driver in self.drivers:
            driver.start()

    def submit(self, job: Job) -> Future:
        self.jobs.put(job)
        return job.future

    def replace_model(self, model: ServedModel) -> None:
        """Later jobs go to processes holding ``model``; jobs in flight finish where they are."""
        self.model = model

    @property
    def ready_workers(self) -> int:
        return sum(1 for p in self.processes if p is not None and p.ready and p.version == self.model.version)

    @property
    def load_errors(self) -> list[str]:
        return sorted({e for e in self.errors if e})

    def close(self) -> None:
        self.closing.set()
        for _ in self.drivers:
            self.jobs.put(STOP)
        for driver in self.drivers:
            driver.join(timeout=15)

    def _current(self, slot: int) -> ScoringProcess | None:
        """This slot's process, (re)started when missing, dead or holding another version than the model's."""
        process, model = self.processes[slot], self.model
        if process is not None and process.ready and process.version == model.version:
            return process
        if process is not None:
            process.stop()
            self.processes[slot] = None
        failed = self.failed[slot]
        if failed and failed[0] == model.version and time.monotonic() - failed[1] < RETRY_LOAD_S:
            return None
        process = ScoringProcess(model, self.root, self.work_root, self.threads)
        if not process.ready:
            self.failed[slot], self.errors[slot] = (model.version, time.monotonic()), process.error
            return None
        self.processes[slot], self.errors[slot], self.failed[slot] = process, "", None
        return process

    def _drive(self, slot: int) -> None:
        self._current(slot)
        while not self.closing.is_set():
            try:
                job = self.jobs.get(timeout=0.5)
            except queue.Empty:
                self._current(slot)  # between jobs: pick up a new model version, or a dead process
                continue
            if job is STOP:
                break
            if not job.future.set_running_or_notify_cancel():
                continue
            job.future.set_result(self._run(slot, job))
        if self.processes[slot] is not None:
            self.processes[slot].stop()

    def _run(self, slot: int, job: Job) -> dict:
        if time.monotonic() >= job.deadline:
            return failure(504, "waited for a scoring process past the request's time limit")
        started = time.monotonic()
        process = self._current(slot)
        if process is None:
            return failure(503, f"no scoring process could load the model: {self.errors[slot]}")
        try:
            result = process.run(job)
        finally:
            shutil.rmtree(self.work_root / job.id, ignore_errors=True)  # the worker's own cleanup, if it died
        if not process.ready:
            self.processes[slot] = None
        self.mean_job_s = 0.8 * self.mean_job_s + 0.2 * (time.monotonic() - started)
        result["model_version"] = process.version
        return result
