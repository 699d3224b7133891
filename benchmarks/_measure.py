"""Run one measurement in a fresh process so its peak RSS is its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def in_subprocess(module: str, *args: str) -> dict:
    """Run ``python -m module --one args...``; it prints one JSON line with its result."""
    out = subprocess.run(
        [sys.executable, "-m", module, "--one", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed_command(command: list[str]) -> dict:
    """Wall time and peak RSS of an external command, measured by a fresh wrapper process."""
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
        "seconds = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps({'seconds': seconds, 'peak_mb': peak}))\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


# Run inside an instance (DAGSTER_HOME): per run, its job, created/ended times, whether it succeeded, and its
# steps' own compute (STEP_START to its success or failure), as one JSON line.
_RUN_RECORDS = """
import json, dagster as dg
T = dg.DagsterEventType
inst = dg.DagsterInstance.get()
out = []
for record in inst.get_run_records():
    run = record.dagster_run
    start, compute = {}, 0.0
    for r in inst.get_records_for_run(run.run_id, of_type={T.STEP_START, T.STEP_SUCCESS, T.STEP_FAILURE}).records:
        e = r.event_log_entry
        if e.dagster_event.event_type == T.STEP_START:
            start[e.step_key] = e.timestamp
        elif e.step_key in start:
            compute += e.timestamp - start.pop(e.step_key)
    out.append({"job": run.job_name, "created": record.create_timestamp.timestamp(),
                "ended": record.end_time, "compute": compute, "ok": run.status == dg.DagsterRunStatus.SUCCESS})
print(json.dumps(out))
"""


def run_records(env: dict[str, str], python: str = sys.executable) -> list[dict]:
    """Every run of the instance ``env`` names (see _RUN_RECORDS), read by ``python`` in a fresh process."""
    out = subprocess.run([python, "-c", _RUN_RECORDS], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_mb() -> float:
    """This process's peak RSS (VmHWM). Unlike ru_maxrss, it starts afresh at exec, so a
    child forked from a large parent does not report the parent's size."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not in /proc/self/status")


def print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def cli(main, one) -> None:
    """``python -m benchmarks.X``: the table; ``--one WHAT PATH N``: one measurement as JSON."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--one", nargs=3, metavar=("WHAT", "PATH", "N"))
    parser.add_argument("args", nargs="*", help="read by the benchmark itself (e.g. a data root)")
    args, _ = parser.parse_known_args()  # the benchmark's own options (e.g. --sizes) are its main's to read
    if args.one:
        what, path, n = args.one
        print(json.dumps(one(what, path, int(n))))
    else:
        main()
