"""What running steps as SLURM jobs costs, against Dagster's local multiprocess executor.

``python -m benchmarks.slurm_overhead [--videos N] [--jobs J] [--rounds 1|2] [--nodes K]
[--instance postgres|sqlite]``: makes a demo corpus of N videos (default 8), then materialises
stage 1 (``raw_videos`` + ``augmented_videos``) for every video, one run per video and J runs
side by side (default 2, as ``fvc run --jobs 2``), in passes with the multiprocess executor
and with the SLURM executor on a K-node cluster (default 2) that it starts
(``scripts/slurm-local.sh``) and stops, on a Dagster instance in PostgreSQL (default: the
cluster's ``deploy/cluster/dagster.yaml`` and ``scripts/postgres-local.sh``) or sqlite,
deleting the outputs before each pass; by default in the order multiprocess, slurm, slurm,
multiprocess, so that a change in the machine's load weighs on both alike. All in one
invocation, on one instance, on the same inputs.

From the instance's event log, per step:
- launch -> step start: from the executor launching the step (``STEP_WORKER_STARTING``:
  subprocess spawned / ``sbatch`` called) until its compute begins (``STEP_START``): process
  start, SLURM scheduling, loading the code, initialising resources;
  of which, under SLURM, the job's submit -> start as SLURM records it;
- step compute: ``STEP_START`` to ``STEP_SUCCESS``;
per run: its wall time minus its steps' compute (all orchestration); and the wall time of
the whole stage 1 over all videos.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
from benchmarks._measure import REPO_ROOT, print_table
from fvc_assets.augment.assets import augmented_videos
from fvc_assets.ingest.assets import raw_videos
from fvc_resources.slurm.executor import fvc_executor_with_default
from fvc_resources.storage import StorageResource
from fvc_resources.video_resource import VideoResource

SLURM_LOCAL = REPO_ROOT / "scripts" / "slurm-local.sh"
POSTGRES_LOCAL = REPO_ROOT / "scripts" / "postgres-local.sh"
PASS_ORDER = ("multiprocess", "slurm", "slurm", "multiprocess")
STAGE1 = "stage1"

stage1_job = dg.define_asset_job(
    STAGE1, selection=dg.AssetSelection.assets(raw_videos, augmented_videos), executor_def=fvc_executor_with_default()
)
defs = dg.Definitions(
    assets=[raw_videos, augmented_videos], jobs=[stage1_job],
    resources={"storage": StorageResource(data_dir=dg.EnvVar("FVC_DATA_DIR")), "video": VideoResource()},
)


def _stage1():
    return defs.resolve_job_def(STAGE1)


def run_one(backend: str, key: str) -> None:
    """One stage-1 run for one partition, in this process; prints its run id."""
    config = {"multiprocess": {}} if backend == "multiprocess" else {"slurm": {"check_step_health_interval_seconds": 5}}
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(dg.reconstructable(_stage1), instance=instance,
                                run_config={"execution": {"config": config}},
                                tags={"dagster/partition": key, "fvc/bench": backend}, raise_on_error=False)
    print(json.dumps({"run_id": result.run_id, "success": result.success}))


def run_all(backend: str, keys: list[str], jobs: int) -> tuple[float, list[str]]:
    def one(key: str) -> str:
        done = subprocess.run([sys.executable, "-m", "benchmarks.slurm_overhead", "--run", backend, key],
                              cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        if not answer["success"]:
            raise RuntimeError(f"{backend} run for {key} failed: run {answer['run_id']}")
        return answer["run_id"]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        run_ids = list(pool.map(one, keys))
    return time.perf_counter() - started, run_ids


def step_timings(instance: dg.DagsterInstance, run_ids: list[str]) -> dict[str, list[float]]:
    """Per step: launch -> step start and compute seconds; per run: wall minus step compute."""
    out: dict[str, list[float]] = {"start": [], "compute": [], "run_overhead": [], "slurm_queue": []}
    for run_id in run_ids:
        times: dict[tuple[str | None, str], float] = {}
        for record in instance.get_records_for_run(run_id).records:
            entry = record.event_log_entry
            if entry.dagster_event:
                times.setdefault((entry.step_key, entry.dagster_event.event_type_value), entry.timestamp)
                metadata = getattr(entry.dagster_event.event_specific_data, "metadata", None) or {}
                if "slurm_job_id" in metadata:
                    out["slurm_queue"].append(slurm_queue_seconds(str(metadata["slurm_job_id"].value)))
        steps = {step for step, _ in times if step}
        computes = []
        for step in steps:
            launched = times[(step, "STEP_WORKER_STARTING")]
            out["start"].append(times[(step, "STEP_START")] - launched)
            computes.append(times[(step, "STEP_SUCCESS")] - times[(step, "STEP_START")])
        out["compute"].extend(computes)
        wall = times[(None, "PIPELINE_SUCCESS")] - times[(None, "PIPELINE_START")]
        out["run_overhead"].append(wall - sum(computes))
    return out


def slurm_queue_seconds(job_id: str) -> float:
    """SLURM's own submit -> start time of a job (scontrol; whole seconds)."""
    from datetime import datetime

    from fvc_resources.slurm.slurm_cli import show_job

    info = show_job(job_id)
    parse = datetime.fromisoformat
    return (parse(info.start_time) - parse(info.submit_time)).total_seconds()


def start_postgres(state: Path) -> None:
    """A PostgreSQL server from the project script; its DAGSTER_PG_* variables into this environment."""
    started = subprocess.run([str(POSTGRES_LOCAL), "up", str(state)], check=True, capture_output=True, text=True)
    os.environ.update(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines()
                      if line.startswith("export DAGSTER_PG_"))


def nodes_of(run_ids: list[str]) -> dict[str, int]:
    """How many of these runs' step jobs ran on each node."""
    from collections import Counter

    from fvc_resources.slurm.slurm_cli import show_job

    counted: Counter = Counter()
    with dg.DagsterInstance.get() as instance:
        for run_id in run_ids:
            for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_WORKER_STARTING).records:
                metadata = record.event_log_entry.dagster_event.event_specific_data.metadata
                counted[show_job(str(metadata["slurm_job_id"].value)).node_list] += 1
    return dict(sorted(counted.items()))


def main(videos: int, jobs: int, rounds: int, nodes: int, instance_kind: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="fvc-bench-slurm-"))
    home, data, cluster = root / "dagster_home", root / "data", root / "slurm"
    home.mkdir()
    template = REPO_ROOT / ("deploy/cluster" if instance_kind == "postgres" else "dagster_home") / "dagster.yaml"
    shutil.copyfile(template, home / "dagster.yaml")
    os.environ.update(DAGSTER_HOME=str(home), FVC_DATA_DIR=str(data), SLURM_CONF=str(cluster / "slurm.conf"))
    os.chmod(root, 0o755)  # the munge and postgres users must reach their folders
    try:
        if instance_kind == "postgres":
            start_postgres(root / "postgres")
        subprocess.run([sys.executable, "-m", "fvc_assets.cli", "demo-corpus", "--out", str(data / "inbox"),
                        "--videos", str(videos)], check=True, capture_output=True)
        from fvc_assets.ingest.registration import register_new_videos
        from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME

        registered, _ = register_new_videos(data / "inbox", data / "registry")
        keys = sorted(r.key for r in registered)
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, keys)
        subprocess.run([str(SLURM_LOCAL), "up", str(cluster)], check=True, capture_output=True,
                       env={**os.environ, "FVC_SLURM_NODES": str(nodes)})

        # A B B A: drift in the machine's load (or warm caches) weighs on both executors alike.
        walls: dict[str, list[float]] = {"multiprocess": [], "slurm": []}
        runs: dict[str, list[str]] = {"multiprocess": [], "slurm": []}
        load_before = os.getloadavg()[0]
        for backend in PASS_ORDER[: 2 * rounds]:
            shutil.rmtree(data / "videos", ignore_errors=True)
            wall, run_ids = run_all(backend, keys, jobs)
            walls[backend].append(wall)
            runs[backend].extend(run_ids)
        load_after = os.getloadavg()[0]

        with dg.DagsterInstance.get() as instance:  # before the cluster stops: scontrol knows the jobs
            timings = {b: step_timings(instance, runs[b]) for b in runs}
        per_node = nodes_of(runs["slurm"])
    finally:
        subprocess.run([str(SLURM_LOCAL), "down", str(cluster)], capture_output=True)
        subprocess.run([str(POSTGRES_LOCAL), "down", str(root / "postgres")], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)

    local, slurm = timings["multiprocess"], timings["slurm"]
    mean = statistics.mean
    print(f"stage 1 (raw_videos + augmented_videos), demo corpus of {videos} videos (--seed 0): "
          f"{len(keys)} runs per pass, {jobs} side by side; passes {' '.join(PASS_ORDER[: 2 * rounds])}; "
          f"{nodes}-node SLURM on this machine ({os.cpu_count()} cores; step jobs per node: "
          f"{', '.join(f'{n} {c}' for n, c in per_node.items())}); instance storage: {instance_kind}; load average "
          f"{load_before:.1f} before, {load_after:.1f} after)")
    rows = [
        ["launch -> step compute starts (s/step)", f"{mean(local['start']):.2f}", f"{mean(slurm['start']):.2f}",
         f"{mean(slurm['start']) / mean(local['start']):.2f}x"],
        ["  of which SLURM submit -> job start (s/step)", "-", f"{mean(slurm['slurm_queue']):.2f}", "-"],
        ["step compute (s/step)", f"{mean(local['compute']):.2f}", f"{mean(slurm['compute']):.2f}",
         f"{mean(slurm['compute']) / mean(local['compute']):.2f}x"],
        ["run wall - step compute (s/run)", f"{mean(local['run_overhead']):.2f}",
         f"{mean(slurm['run_overhead']):.2f}", f"{mean(slurm['run_overhead']) / mean(local['run_overhead']):.2f}x"],
        ["stage 1 wall time, all videos (s/pass)", f"{mean(walls['multiprocess']):.1f}",
         f"{mean(walls['slurm']):.1f}", f"{mean(walls['slurm']) / mean(walls['multiprocess']):.2f}x"],
    ]
    print_table(["measure", "multiprocess", "slurm", "slurm / multiprocess"], rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, choices=(1, 2), default=2,
                        help="1: multiprocess then slurm; 2: multiprocess, slurm, slurm, multiprocess")
    parser.add_argument("--nodes", type=int, default=2, help="SLURM nodes (slurmd) on this machine")
    parser.add_argument("--instance", choices=("postgres", "sqlite"), default="postgres",
                        help="the Dagster instance's storage (postgres: the cluster's dagster.yaml)")
    parser.add_argument("--run", nargs=2, metavar=("BACKEND", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_one(*args.run)
    else:
        main(args.videos, args.jobs, args.rounds, args.nodes, args.instance)
