"""The body of ``fvc run``: register the inbox, then bring the asset graph up to date through the run queue."""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from pathlib import Path

import dagster as dg
from fvc_assets.launch.environment import PROJECT_ROOT
from fvc_assets.ingest.manifest import manifest_problems
from fvc_assets.ingest.registration import load_registry
from fvc_assets.jobs import ENSEMBLE_JOB, PER_VIDEO_JOBS, PROMOTE_JOB, STAGE5_JOBS, VIDEO_PIPELINE_JOB
from fvc_assets.launch.client import BATCH_TAG, LAUNCHED_BY_TAG, JobReport, QueueClient, RunOutcome, all_partitions, run_jobs
from fvc_core.batches import Batching
from fvc_assets.launch.daemon import QueueDaemon
from fvc_assets.launch.inbox import ensure_pools, register_inbox
from fvc_assets.launch.submit import run_submitter
from fvc_resources.storage import StorageResource

WORKSPACE_YAML = PROJECT_ROOT / "workspace.yaml"


def load_run_config(path: Path | None) -> dict:
    if path is None:
        return {}
    import yaml

    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SystemExit(f"--run-config {path}: {error}") from error
    if not isinstance(config, dict):
        raise SystemExit(f"--run-config {path}: expected a mapping (run config), got {type(config).__name__}")
    return config


def executor_backend(run_config: dict) -> str:
    """The executor the runs will use: the run config's choice, else the definitions' default."""
    from fvc_assets.deployment import executor_backend as deployment_backend

    chosen = (run_config.get("execution") or {}).get("config") or {}
    return next(iter(chosen), deployment_backend())


def configured_storage(defs: dg.Definitions, data_dir: Path) -> StorageResource:
    """The definitions' storage resource with its config resolved (dg.EnvVar included), as a run gets it."""
    with dg.build_resources({"storage": defs.resources["storage"]}) as resources:
        storage = resources.storage
    if storage.root != Path(data_dir).absolute():
        raise SystemExit(f"the definitions' data root {storage.root} is not {data_dir}")
    return storage


def configured_batching(defs: dg.Definitions, size: int | None, above: int | None) -> Batching:
    """The definitions' batching resource (what the inbox sensor uses), with the command's overrides."""
    with dg.build_resources({"batching": defs.resources["batching"]}) as resources:
        policy = resources.batching.policy()
    try:
        return Batching(size=policy.size if size is None else size, above=policy.above if above is None else above)
    except ValueError as error:
        raise SystemExit(f"fvc run: {error}") from error


def announce_waiting():
    """Says once that fvc run waits for files still being written into the inbox."""
    said = set()

    def on_wait(waiting) -> None:
        fresh = [w.path for w in waiting if w.path not in said]
        if fresh:
            print(f"waiting for {len(fresh)} inbox file(s) still being written: {', '.join(fresh[:3])}"
                  + (" ..." if len(fresh) > 3 else ""), flush=True)
            said.update(fresh)

    return on_wait


def refuse_unreachable_slurm(backend: str) -> None:
    """A SLURM configuration runs on SLURM or not at all: never silently on this machine."""
    if backend != "slurm":
        return
    from fvc_resources.slurm.slurm_cli import reachable

    why = reachable()
    if why:
        raise SystemExit(f"the executor is slurm, but SLURM is not reachable from here: {why}\n"
                         "Nothing was submitted. Start the cluster (or fix SLURM_CONF), or choose another executor.")


def run_command(args: argparse.Namespace, data_dir: Path) -> int:
    from fvc_assets.definitions import defs

    instance = dg.DagsterInstance.get()
    storage = configured_storage(defs, data_dir)
    run_config = load_run_config(args.run_config)
    if not args.verbose:  # the runs' own event log stays in the UI; the terminal gets the outcomes
        run_config.setdefault("loggers", {"console": {"config": {"log_level": "WARNING"}}})
    batching = configured_batching(defs, args.batch_size, args.batch_above)
    backend = executor_backend(run_config)
    refuse_unreachable_slurm(backend)
    ensure_pools(instance)
    scan = register_inbox(instance, storage, on_wait=announce_waiting())
    registered, rejected = [r.key for r in scan.new], scan.rejected
    problems = manifest_problems(storage.inbox_dir)
    registry = load_registry(storage.registry_dir)
    print(f"executor: {backend}; runs go through the run queue of {os.environ['DAGSTER_HOME']}", flush=True)

    video_keys = all_partitions(instance, defs, VIDEO_PIPELINE_JOB)
    if args.partition:
        unknown = sorted(set(args.partition) - set(video_keys))
        if unknown:
            raise SystemExit(f"unknown video partition(s): {', '.join(unknown)}")
        video_keys = [k for k in video_keys if k in set(args.partition)]
    train = not (args.skip_training or args.partition)
    defined = {job.name for job in defs.resolve_all_job_defs()}
    jobs = [j for j in (*PER_VIDEO_JOBS, *(STAGE5_JOBS if train else [])) if j in defined]
    # An explicit --partition selection is run whether or not it is up to date.
    force_jobs = set(jobs) if args.force else ({VIDEO_PIPELINE_JOB} if args.partition else set())

    def partitions_of(job: str) -> list[str | None]:
        return video_keys if job == VIDEO_PIPELINE_JOB else all_partitions(instance, defs, job)

    def label(outcome: RunOutcome) -> str:
        """'xgboost/fold 2', 'ensemble/fold 2', a video key, or the job's name."""
        if outcome.partition is None:
            return outcome.job
        partitions_def = defs.resolve_job_def(outcome.job).partitions_def
        if isinstance(partitions_def, dg.MultiPartitionsDefinition):
            keys = partitions_def.get_partition_key_from_str(outcome.partition).keys_by_dimension
            return f"{keys['model']}/fold {keys['fold']}"
        return f"ensemble/fold {outcome.partition}" if outcome.job == ENSEMBLE_JOB else outcome.partition

    def show(outcome: RunOutcome) -> str:
        return f"  {'ok    ' if outcome.success else 'FAILED'} {label(outcome)}"

    def announce(report: JobReport) -> None:
        if report.skipped:
            print(f"{report.job}: not run: {report.skipped}", flush=True)
        elif not report.to_run:
            print(f"{report.job}: up to date, nothing to run", flush=True)
        else:
            reasons = sorted({why.split(':')[0] for why in report.to_run.values()})
            count = (f"{len(report.to_run)} video(s) in {report.batches} batch(es), one run per stage each"
                     if report.batches else f"{len(report.to_run)} run(s)")
            print(f"{report.job}: {count} ({'; '.join(reasons[:3])})", flush=True)

    daemon = QueueDaemon(instance, WORKSPACE_YAML, args.jobs, log_level="debug" if args.verbose else "warning",
                         to_terminal=args.verbose)
    tags = {LAUNCHED_BY_TAG: "fvc run", BATCH_TAG: uuid.uuid4().hex[:12]}
    started = time.perf_counter()
    client = None
    try:
        if video_keys:  # start it now (when there may be work), so that it boots while the plan is made
            daemon.ensure()
        with run_submitter(instance, WORKSPACE_YAML, defs, "DEBUG" if args.verbose else "WARNING") as submitter:
            client = QueueClient(instance, submitter, daemon, tags, run_config)
            reports = run_jobs(client, defs, jobs, partitions_of, force_jobs, show, announce, batching)
    except KeyboardInterrupt:
        canceled = client.cancel_in_flight() if client else []
        print(f"\ninterrupted: canceled {len(canceled)} run(s) this command had submitted", flush=True)
        return 130
    finally:
        own_daemon = daemon.started_here
        daemon.stop()
    elapsed = time.perf_counter() - started

    by_job = {r.job: r for r in reports}
    video = by_job[VIDEO_PIPELINE_JOB]
    print(f"\n{len(video.outcomes)} video partition(s) run, {len(video.failed)} failed, "
          f"{len(registered)} newly registered, in {video.seconds:.1f}s")
    for outcome in video.failed:
        path = registry[outcome.partition].path if outcome.partition in registry else "?"
        print(f"FAILED {outcome.partition} ({path}): {outcome.error}")
    for item in rejected:
        print(f"NOT INGESTED {item.path}: {item.reason}")
    for item in scan.changed:
        print(f"CHANGED {item.path}: new content, registered as partition {item.new_key}; "
              f"{item.old_key} keeps its outputs")
    for item in scan.waiting:
        print(f"WAITING {item.path}: still being written (modified {item.modified_seconds_ago:.0f}s ago); "
              "not registered by this run")
    for problem in problems:
        print(f"MANIFEST {problem}")
    ok = not video.failed and not rejected

    stage5 = [by_job[j] for j in by_job if j in STAGE5_JOBS and j != PROMOTE_JOB]
    if stage5:
        outcomes = [o for r in stage5 for o in r.outcomes]
        failed = [o for o in outcomes if not o.success]
        print(f"\n{len(outcomes)} training run(s), {len(failed)} failed, in {sum(r.seconds for r in stage5):.1f}s")
        for outcome in failed:
            print(f"FAILED {label(outcome)}: {outcome.error}")
        for report in stage5:
            if report.skipped:
                print(f"NOT RUN {report.job}: {report.skipped}")
        ok = ok and not failed and not any(r.skipped for r in stage5)
        print_comparison(storage)
    if PROMOTE_JOB in by_job:
        ok = print_promotion(instance, defs, storage, by_job[PROMOTE_JOB]) and ok
    launched = sum(len(r.outcomes) for r in reports)
    if not launched:
        print("nothing new: every asset fvc run manages is up to date; no run launched")
    print(f"done in {elapsed:.1f}s" + (" (with a daemon started for this command)" if own_daemon else ""))
    return 0 if ok else 1


def print_comparison(storage: StorageResource) -> None:
    import polars as pl

    from fvc_assets.train.comparison import plain_table

    out = storage.comparison_dir
    if not (out / "table.parquet").exists():
        return
    print("\nModel comparison (held-out videos, mean ± std over 5 folds; demo scores say nothing about real FVC):")
    print(plain_table(pl.read_parquet(out / "table.parquet")))
    best = json.loads((out / "best_model.json").read_text())
    print(f"\nbest model by mean ROC-AUC: {best['best_model']}; plots and tables in {out}")


def print_promotion(instance: dg.DagsterInstance, defs: dg.Definitions, storage: StorageResource,
                    report: JobReport) -> bool:
    """The promotion's outcome; False only when it failed for another reason than its gate's refusal."""
    from fvc_assets.launch.plan import refused_by_blocking_check
    from fvc_assets.promote.assets import read_candidate

    if report.skipped:
        print(f"\npromotion: not run: {report.skipped}")
        return False
    if not report.outcomes:
        return True
    outcome = report.outcomes[-1]
    registry = configured_registry(defs, instance)
    champion = registry.champion()
    standing = (f"champion: {registry.name} v{champion.version} ({champion.tags.get('model', '?')})"
                if champion else "no champion yet")
    if outcome.success:
        print(f"\npromotion: {standing}; `fvc serve` answers with it, `fvc model rollback` undoes it")
        return True
    if refused_by_blocking_check(instance, defs, dg.AssetKey("deployed_model")):
        picked = read_candidate(storage)
        note = registry.version(picked["version"]).tags.get("promotion", "")
        print(f"\npromotion: candidate v{picked['version']} {note}\n{standing}"
              + ("" if champion else "; to serve a model anyway, promote it by hand: fvc model promote VERSION "
                                     "--reason TEXT (fvc model list shows the versions)"))
        return True
    print(f"\npromotion FAILED: {outcome.error}")
    return False


def configured_registry(defs: dg.Definitions, instance: dg.DagsterInstance):
    """The registry the definitions' promotion and tracking resources point at, as a run gets them."""
    with dg.build_resources({"tracking": defs.resources["tracking"], "promotion": defs.resources["promotion"]},
                            instance=instance) as resources:
        return resources.promotion.registry(resources.tracking)
