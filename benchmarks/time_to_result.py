"""Time to result: `make demo`'s two steps from nothing, phase by phase.

``python -m benchmarks.time_to_result [--fresh-clone] [--videos N] [--keep]``

In a fresh data root and a fresh instance (the project's ``dagster_home/dagster.yaml``),
as ``make demo`` runs them: ``fvc demo-corpus --out <data>/inbox``, then ``fvc run``.
With ``--fresh-clone``, first ``git clone`` of this checkout's HEAD and ``make venv``
in it, and both steps with that clone's venv: the newcomer's whole wait.

Phases: the venv (with ``--fresh-clone``); the corpus; ``fvc run``'s start (until its first
run is queued: imports, registration, planning, the daemon and code server); the video
runs; catalog and folds; training (base models and ensemble); the comparison; the promotion; and the end
(after the last run). Each run phase spans its first run's creation to its last run's end,
read from the instance. Its orchestration share is 1 - the steps' own compute (STEP_START
to its end) / (phase wall x runs at once): the part of the run slots' time spent launching,
queueing, or idle.

The reference, measured in the same invocation, is the issue's goal: the whole at most
10 minutes from a fresh clone, at most 8 with the venv present (ratio = measured / goal).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._measure import REPO_ROOT, print_table, run_records

GOAL_WITH_VENV_S = 8 * 60
GOAL_FRESH_CLONE_S = 10 * 60
RUN_PHASES = {  # phase -> the jobs whose runs it spans
    "video runs": ("video_pipeline",),
    "catalog and folds": ("catalog",),
    "training": ("train", "ensemble"),
    "comparison": ("compare",),
    "promotion": ("promote",),
}

def timed(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> tuple[float, float, float, int]:
    """(start epoch, end epoch, wall seconds, exit code) of a command, its output to ``log``."""
    started_at, started = time.time(), time.perf_counter()
    with open(log, "ab") as out:
        code = subprocess.run(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode
    return started_at, time.time(), time.perf_counter() - started, code


def phase_rows(runs: list[dict], run_started: float, run_ended: float, jobs: int) -> list[list]:
    """One row per phase of `fvc run`: wall, runs, failed, step compute, orchestration share."""
    rows, spans = [], []
    for phase, job_names in RUN_PHASES.items():
        chosen = [r for r in runs if r["job"] in job_names and r["ended"]]
        if not chosen:
            continue
        begin, end = min(r["created"] for r in chosen), max(r["ended"] for r in chosen)
        spans.append((begin, end))
        wall = end - begin
        compute = sum(r["compute"] for r in chosen)
        share = 1 - compute / (wall * min(jobs, len(chosen))) if wall > 0 else 0.0
        rows.append([phase, f"{wall:.1f}", len(chosen), sum(not r["ok"] for r in chosen), f"{compute:.1f}",
                     f"{share:.0%}"])
    if spans:
        first, last = min(b for b, _ in spans), max(e for _, e in spans)
        rows.insert(0, ["fvc run: start (to the first run queued)", f"{first - run_started:.1f}", "", "", "", ""])
        rows.append(["fvc run: end (after the last run)", f"{run_ended - last:.1f}", "", "", "", ""])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh-clone", action="store_true",
                        help="clone HEAD and build its venv first (`make venv`), as a newcomer does")
    parser.add_argument("--videos", type=int, default=None, help="demo corpus size (default: fvc demo-corpus's)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (the instance's max_concurrent_runs)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone, instance and data")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="fvc-time-to-result-"))
    log = work / "log.txt"
    rows: list[list] = []
    total = 0.0
    try:
        checkout, python = REPO_ROOT, sys.executable
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DAGSTER_", "FVC_", "MLFLOW_")) and k != "VIRTUAL_ENV"}
        if args.fresh_clone:
            checkout = work / "clone"
            subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(checkout)], check=True)
            _, _, seconds, code = timed(["make", "venv"], env, checkout, log)
            if code:
                raise SystemExit(f"make venv failed; see {log}")
            rows.append(["venv (make venv in a fresh clone)", f"{seconds:.1f}", "", "", "", ""])
            total += seconds
            python = str(checkout / ".venv" / "bin" / "python")
        home, data = work / "dagster_home", work / "data"
        home.mkdir()
        shutil.copyfile(checkout / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        env.update(DAGSTER_HOME=str(home), FVC_DATA_DIR=str(data))
        fvc = [python, "-m", "fvc_assets.cli"]
        corpus = [*fvc, "demo-corpus", "--out", str(data / "inbox")]
        corpus += ["--videos", str(args.videos)] if args.videos else []
        _, _, seconds, code = timed(corpus, env, checkout, log)
        if code:
            raise SystemExit(f"fvc demo-corpus failed; see {log}")
        rows.append(["corpus (fvc demo-corpus)", f"{seconds:.1f}", "", "", "", ""])
        total += seconds
        # As `make demo` runs it: the inbox was just written, and `fvc run` waits for files to settle.
        started_at, ended_at, seconds, code = timed([*fvc, "run", "--jobs", str(args.jobs)], env, checkout, log)
        rows += phase_rows(run_records(env, python), started_at, ended_at, args.jobs)
        rows.append(["fvc run (whole)", f"{seconds:.1f}", "", "", "", ""])
        total += seconds
        if code:
            print(f"fvc run exited {code}; see {log}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    goal = GOAL_FRESH_CLONE_S if args.fresh_clone else GOAL_WITH_VENV_S
    rows.append(["total", f"{total:.1f}", "", "", "", f"{total / goal:.2f} of the {goal // 60}-min goal"])
    print(f"time to result: make demo's steps from nothing{' in a fresh clone' if args.fresh_clone else ''}, "
          f"--jobs {args.jobs}, {os.cpu_count()} cores")
    print_table(["phase", "wall s", "runs", "failed", "step compute s", "orchestration share"], rows)


if __name__ == "__main__":
    main()
