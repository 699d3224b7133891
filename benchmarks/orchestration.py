"""What launching through Dagster's run queue costs against running each job in process.

``python -m benchmarks.orchestration [--corpus demo|tiny|both] [--jobs 2]``

Two corpora, each from a fresh instance and data root (everything missing):

- ``demo``: the 48-video demo corpus (``fvc demo-corpus``), stages 1-4 and stage 5;
- ``tiny``: 40 one-second 128x96 videos, stages 1-4 only, where a fixed cost per run shows most.

Two ways, side by side in one invocation on the same inputs:

- reference ("in process"): how ``fvc run`` worked before it used the queue, kept here
  as the yardstick: each partition's job executed in process (``execute_in_process``) in
  ``--jobs`` spawned worker processes side by side; stage 5 as catalog, base models,
  ensemble, comparison, with each training worker's math libraries capped to its share
  of the cores;
- ``fvc run --jobs N``: runs submitted to the run queue, started by the daemon through
  the run launcher and the configured executor.

Columns: wall time; runs; the steps' own compute summed from the event log (STEP_START to
its end); orchestration share = 1 - step compute / (wall x jobs), the part of the slots'
time not spent inside a step (launching, queueing, idle slots while one run holds the
stage, such as the catalog); and the ratio of the wall times (queue / in process).
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

TINY_VIDEOS = 40


def make_tiny_corpus(inbox: Path, n: int = TINY_VIDEOS) -> None:
    """``n`` one-second 128x96 H.264 videos of moving noise (no manifest: stages 1-4 only)."""
    from fractions import Fraction

    import numpy as np

    from fvc_resources.video import write_clip

    inbox.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rng = np.random.default_rng(i)
        base = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
        frames = (np.roll(base, 2 * t, axis=1) for t in range(25))
        write_clip(inbox / f"tiny_{i:03d}.mp4", frames, Fraction(25))


def fresh_root(corpus_inbox: Path, where: Path) -> dict[str, str]:
    """A new DAGSTER_HOME (the project's dagster.yaml) and data root whose inbox holds the corpus."""
    home, data = where / "dagster_home", where / "data"
    home.mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    shutil.copytree(corpus_inbox, data / "inbox")
    # The corpus was just written: no waiting for files to settle in either way.
    return {**os.environ, "DAGSTER_HOME": str(home), "FVC_DATA_DIR": str(data), "FVC_INBOX_SETTLE_S": "0"}


# --- the reference: each partition's job in process, N spawned workers ----------------------------

def _execute(job_name: str, partition_key, threads: int = 0) -> bool:
    import dagster as dg

    from fvc_assets.definitions import defs

    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(threads)
    if isinstance(partition_key, dict):
        partition_key = dg.MultiPartitionKey(partition_key)
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=dg.DagsterInstance.get(), partition_key=partition_key, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    return result.success


def _in_workers(items: list[tuple], jobs: int) -> list[bool]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_execute, *zip(*items))) if items else []


def reference(jobs: int, train: bool) -> None:
    """The in-process way, in this (fresh) process."""
    import dagster as dg

    from fvc_assets.definitions import defs
    from fvc_assets.jobs import CATALOG_JOB, COMPARE_JOB, ENSEMBLE_JOB, TRAIN_JOB, VIDEO_PIPELINE_JOB
    from fvc_assets.launch.inbox import ensure_pools, register_inbox
    from fvc_assets.partitions import BASE_MODELS, FOLDS, VIDEOS_PARTITIONS_NAME
    from fvc_resources.storage import StorageResource

    instance = dg.DagsterInstance.get()
    ensure_pools(instance)
    register_inbox(instance, StorageResource(data_dir=os.environ["FVC_DATA_DIR"], inbox_settle_seconds=0))
    keys = sorted(instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME))
    _in_workers([(VIDEO_PIPELINE_JOB, k) for k in keys], jobs)
    if not train:
        return
    _execute(CATALOG_JOB, None)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    _in_workers([(TRAIN_JOB, {"model": m, "fold": f}, threads) for m in BASE_MODELS for f in FOLDS], jobs)
    if any(job.name == ENSEMBLE_JOB for job in defs.resolve_all_job_defs()):
        _in_workers([(ENSEMBLE_JOB, f, threads) for f in FOLDS], jobs)
    _execute(COMPARE_JOB, None)


# --- measuring ---------------------------------------------------------------------------------------

def step_compute_and_runs(env: dict[str, str]) -> tuple[float, int, int]:
    """Sum of the steps' compute (STEP_START to its end), runs, failed runs, read from the instance."""
    runs = run_records(env)
    return sum(r["compute"] for r in runs), len(runs), sum(not r["ok"] for r in runs)


def timed(command: list[str], env: dict[str, str], log: Path) -> float:
    started = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run(command, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}; see {log}")
    return seconds


def measure(corpus: str, inbox: Path, work: Path, jobs: int) -> list[list]:
    train = corpus == "demo"
    rows = []
    walls = {}
    for way in ("in process", "fvc run (queue)"):
        env = fresh_root(inbox, work / way.split()[0])
        if way == "in process":
            command = [sys.executable, "-m", "benchmarks.orchestration", "--reference", "--jobs", str(jobs)]
            command += [] if train else ["--skip-training"]
        else:
            command = [sys.executable, "-m", "fvc_assets.cli", "run", "--jobs", str(jobs)]
            command += [] if train else ["--skip-training"]
        wall = timed(command, env, work / f"{way.split()[0]}.log")
        compute, runs, failed = step_compute_and_runs(env)
        walls[way] = wall
        share = 1 - compute / (wall * jobs)
        rows.append([corpus, way, f"{wall:.1f}", runs, failed, f"{compute:.1f}", f"{share:.1%}",
                     f"{wall / walls['in process']:.2f}"])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=("demo", "tiny", "both"), default="both")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the temporary instances and data")
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-training", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reference:
        reference(args.jobs, train=not args.skip_training)
        return

    work = Path(tempfile.mkdtemp(prefix="fvc-orchestration-"))
    rows = []
    try:
        for corpus in (("tiny", "demo") if args.corpus == "both" else (args.corpus,)):
            inbox = work / corpus / "corpus"
            if corpus == "demo":
                from fvc_assets.demo.corpus import write_corpus

                write_corpus(inbox)
            else:
                make_tiny_corpus(inbox)
            rows += measure(corpus, inbox, work / corpus, args.jobs)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    print(f"orchestration: in-process reference vs fvc run through the run queue, --jobs {args.jobs}, "
          f"{os.cpu_count()} cores")
    print_table(["corpus", "way", "wall s", "runs", "failed", "step compute s", "orchestration share",
                 "ratio"], rows)


if __name__ == "__main__":
    main()
