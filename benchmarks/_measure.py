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
    args = parser.parse_args()
    if args.one:
        what, path, n = args.one
        print(json.dumps(one(what, path, int(n))))
    else:
        main()
