"""A long-lived process that imports the code location once and forks one run worker per run.

Started by ``PreloadedRunLauncher`` (fvc_resources.run_launcher). A fresh Python
process that imports dagster and the definitions costs about two seconds on
this kind of machine, once per run; a fork of this host costs a few
milliseconds and starts with everything imported.

Heavy libraries that only some runs use (torch, mlflow, scikit-learn: about 5 s
of imports for a training run) are imported while the host has nothing to
launch and no worker is running (``--preload-when-idle``): between the video runs
and the training runs of ``fvc run``, say, never on the CPU that runs need; then
nothing per run after. A job's own list (``preload_for_jobs`` of the launcher) is imported
before that job's first run is forked, idle or not: the training runs of a busy queue then
pay their imports once, not each. Before each fork the host's objects are frozen
(``gc.freeze``), so a worker's garbage collections never walk them.

Protocol (one JSON object per line): the launcher writes
``{"run_id": ..., "instance_ref": <serialized InstanceRef>, "env": {...}, "threads": N, "preload": [...]}`` to
stdin; the host answers ``{"run_id": ..., "pid": <worker pid>, "preloaded": [...]}`` (those of the
request's modules the worker started with), or
``{"run_id": ..., "stale": true}`` when the source files of the preloaded
modules changed since it imported them (the launcher then starts a new host,
so a run never executes yesterday's code). The host exits at end of input; run
workers it forked carry on to the end of their runs.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import sys
import time
from pathlib import Path

WORKER_PID_TAG = "fvc/worker_pid"
WORKER_HOST_TAG = "fvc/worker_host"
WORKER_STARTED_TAG = "fvc/worker_started"
# The worker's start in clock ticks since boot: what tells a reused pid apart. The epoch time above is
# derived from the boot time, which moves in whole seconds when the wall clock is adjusted (a VM's clock
# under load): two readings of one process then differ by a second.
WORKER_START_TICKS_TAG = "fvc/worker_start_ticks"
# Seconds with no request and no worker before the host imports its idle modules (``serve``).
IDLE_SETTLE_S = 5.0


def source_fingerprint(modules: list[str]) -> dict[str, int]:
    """mtime of every .py file in the top-level packages of ``modules`` (a few ms for this project)."""
    files: dict[str, int] = {}
    for package in sorted({m.split(".")[0] for m in modules}):
        module = sys.modules.get(package)
        origin = getattr(module, "__file__", None)
        if not origin:
            continue
        root = Path(origin).parent if Path(origin).name == "__init__.py" else Path(origin)
        paths = root.rglob("*.py") if root.is_dir() else [root]
        for path in paths:
            try:
                files[str(path)] = path.stat().st_mtime_ns
            except FileNotFoundError:
                continue
    return files


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (``/proc/<pid>/stat``, field 22); None without
    /proc or the process. Unlike an epoch time it never moves with the wall clock."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[19])  # fields from the 3rd on, after the name
    except (OSError, ValueError, IndexError):
        return None


def worker_tags() -> dict[str, str]:
    """Tags that name this process, so that run monitoring can tell whether it is still alive."""
    import socket

    import psutil

    tags = {WORKER_PID_TAG: str(os.getpid()), WORKER_HOST_TAG: socket.gethostname(),
            WORKER_STARTED_TAG: f"{psutil.Process().create_time():.3f}"}
    ticks = start_ticks(os.getpid())
    if ticks is not None:
        tags[WORKER_START_TICKS_TAG] = str(ticks)
    return tags


def execute_run(run_id: str, instance_ref_json: str) -> int:
    """What ``dagster api execute_run`` does, in this (forked) process."""
    from dagster import DagsterInstance
    from dagster._cli.api import _execute_run_command_body
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import deserialize_value
    from dagster._utils.interrupts import capture_interrupts

    with capture_interrupts():
        with DagsterInstance.from_ref(deserialize_value(instance_ref_json, InstanceRef)) as instance:
            instance.add_run_tags(run_id, worker_tags())
            return _execute_run_command_body(
                run_id, instance, write_stream_fn=lambda _event: None, set_exit_code_on_failure=True)


def warm_up(instance_ref_json: str) -> None:
    """Open and close the instance once in the host: the first DagsterInstance in a process costs about
    half a second (storage modules, schema checks); its workers then start with that done. Nothing stays
    open across the fork."""
    from dagster import DagsterInstance
    from dagster._cli.api import _execute_run_command_body  # noqa: F401 (imported for the workers)
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import deserialize_value

    with DagsterInstance.from_ref(deserialize_value(instance_ref_json, InstanceRef)) as instance:
        instance.get_runs(limit=1)


def limit_threads(threads: int | None) -> None:
    """Cap the math libraries the host already loaded (their pools read the environment when they load,
    which was in the host): OpenBLAS/OpenMP through threadpoolctl, torch's own pool."""
    if not threads:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _start_worker(request: dict) -> int:
    """Fork a run worker; the parent gets its pid."""
    # Everything the host imported (dagster, the definitions, torch...) moves to the permanent
    # generation: the worker's garbage collections never walk those objects, so they neither
    # cost the worker's time nor copy the host's pages (Python's gc.freeze recipe for fork).
    gc.freeze()
    pid = os.fork()
    if pid:
        return pid
    # The child: its own session (terminating it does not reach the host), default signals,
    # nothing of the protocol pipes, the run's environment.
    code = 1
    try:
        os.setsid()
        gc.enable()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(2, 1)  # stdout is the protocol pipe: the worker's prints go to the host's stderr
        sys.stdin = open(os.devnull)
        os.environ.update(request.get("env") or {})
        limit_threads(request.get("threads"))
        code = execute_run(request["run_id"], request["instance_ref"])
    except BaseException:  # noqa: BLE001 — report and leave; never return into the host's loop
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reap() -> bool:
    """Collect ended workers; True when none is left running."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True  # no children at all
        if pid == 0:
            return False


def serve(modules: list[str], when_idle: list[str] | None = None) -> None:
    gc.disable()  # no collections in the host: they would leave holes in pages the workers share
    for module in modules:
        importlib.import_module(module)
    fingerprint = source_fingerprint(modules)
    later = list(when_idle or [])
    out = sys.stdout
    sys.stdout = sys.stderr  # only protocol lines on the real stdout
    print(json.dumps({"ready": True, "pid": os.getpid()}), file=out, flush=True)
    stdin = sys.stdin.buffer
    warmed: set[str] = set()
    launched = False
    idle_since: float | None = None
    while True:
        ready, _, _ = select.select([stdin], [], [], 0.2 if later else 1.0)
        idle = _reap()
        if not ready:
            idle_since = (idle_since or time.monotonic()) if idle else None
            # Nothing to launch and no run working for a while: import the next heavy module, so later
            # workers start with it. Never while runs work: on a small machine the import would take their
            # CPU. Not before the first run: a host started ahead of its first launch must be ready for it.
            # Not in a moment's gap either: between two runs of a busy queue, or while `fvc run` sums up its
            # last run before it stops the host, an import only costs CPU and holds up the next launch or
            # the host's exit (an import cannot be interrupted).
            if later and launched and idle_since is not None and time.monotonic() - idle_since >= IDLE_SETTLE_S:
                _import_quietly(later.pop(0))
            continue
        idle_since = None
        line = stdin.readline()
        if not line:
            return  # the launcher is gone: the host goes too, its workers finish their runs
        request = json.loads(line)
        if source_fingerprint(modules) != fingerprint:
            print(json.dumps({"run_id": request["run_id"], "stale": True}), file=out, flush=True)
            return
        for module in request.get("preload") or []:  # this job's libraries, once: its workers inherit them
            if module not in sys.modules:
                _import_quietly(module)
            if module in later:
                later.remove(module)
        if request["instance_ref"] not in warmed:
            warm_up(request["instance_ref"])
            warmed.add(request["instance_ref"])
        pid = _start_worker(request)
        launched = True
        preloaded = [m for m in request.get("preload") or [] if m in sys.modules]
        print(json.dumps({"run_id": request["run_id"], "pid": pid, "preloaded": preloaded}), file=out, flush=True)


def _import_quietly(module: str) -> None:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module(module)
    except Exception as error:  # noqa: BLE001 — a worker imports it itself then, and fails there if it must
        print(f"run host: could not preload {module}: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preload", action="append", default=[], help="module to import once (repeatable)")
    parser.add_argument("--preload-when-idle", action="append", default=[],
                        help="module to import between launches, once nothing waits (repeatable)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the daemon's terminal: the daemon decides
    serve(args.preload, args.preload_when_idle)


if __name__ == "__main__":
    main()
