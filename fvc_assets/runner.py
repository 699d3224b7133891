"""``fvc run``: register inbox videos, then materialise every per-video asset through Dagster.

Each video partition is its own run in the instance at ``DAGSTER_HOME``, so one
broken video fails its own run only, and every run shows in the UI afterwards.
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import dagster as dg
from fvc_assets.ingest.manifest import manifest_problems
from fvc_assets.ingest.registration import Rejected, load_registry, register_new_videos
from fvc_assets.ingest.sensors import sync_partitions
from fvc_assets.jobs import VIDEO_PIPELINE_JOB
from fvc_assets.orphans import fail_orphaned_runs, process_tags
from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME
from fvc_resources.storage import StorageResource

GPU_POOL = "gpu"


@dataclass
class PartitionOutcome:
    key: str
    path: str
    run_id: str
    success: bool
    error: str = ""


@dataclass
class RunSummary:
    registered: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    manifest_problems: list[str] = field(default_factory=list)
    outcomes: list[PartitionOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[PartitionOutcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.rejected


def ensure_pools(instance: dg.DagsterInstance) -> None:
    """One GPU step at a time on this instance, whatever the pool default says."""
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        info = storage.get_concurrency_info(GPU_POOL)
        if info.slot_count != 1:
            storage.set_concurrency_slots(GPU_POOL, 1)


def recover_orphaned_runs() -> list[str]:
    """Fail the runs of dead ``fvc run`` processes and free their pool slots (see fvc_assets.orphans)."""
    return fail_orphaned_runs(dg.DagsterInstance.get())


def register_inbox(instance: dg.DagsterInstance, storage: StorageResource) -> tuple[list[str], list[Rejected]]:
    """The sensor's registration, run once: new files get keys and partitions."""
    new, rejected = register_new_videos(storage.inbox_dir, storage.registry_dir)
    missing = sync_partitions(instance, list(load_registry(storage.registry_dir)))
    if missing:
        instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, missing)
    return [r.key for r in new], rejected


def failed_checks_message(result: dg.ExecuteInProcessResult) -> str:
    """'check failed: what it names' for every failed blocking check of the run ('' if none)."""
    parts = []
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        named = [f"{k}={v.value}" for k, v in evaluation.metadata.items() if k in ("problems", "missing")]
        parts.append(f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} failed"
                     + (f": {'; '.join(named)}" if named else ""))
    return "; ".join(parts)


def step_failure_message(result: dg.ExecuteInProcessResult) -> str:
    checks = failed_checks_message(result)
    if checks:
        return checks
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            if error is None:
                continue
            # A dg.Failure carries our own description; other errors their message.
            user = error.cause if error.cls_name == "DagsterExecutionStepExecutionError" and error.cause else error
            description = getattr(event.step_failure_data.user_failure_data, "description", None)
            return description or user.message.strip()
    return "run failed (see the run's logs in the Dagster UI)"


def execute_job(job_name: str, partition_key=None, log_level: str = "WARNING") -> dg.ExecuteInProcessResult:
    """One run of a job of the definitions, in this process, on the instance at DAGSTER_HOME."""
    from fvc_assets.definitions import defs

    return defs.resolve_job_def(job_name).execute_in_process(
        instance=dg.DagsterInstance.get(),
        partition_key=partition_key,
        raise_on_error=False,
        tags={"fvc/launched_by": "fvc run", **process_tags()},
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )


def run_partition(key: str, path: str, log_level: str = "WARNING") -> PartitionOutcome:
    """One video partition through the per-video job."""
    result = execute_job(VIDEO_PIPELINE_JOB, key, log_level)
    return PartitionOutcome(
        key=key,
        path=path,
        run_id=result.run_id,
        success=result.success,
        error="" if result.success else step_failure_message(result),
    )


def run_in_workers(worker, items: list, jobs: int, on_done=None, crashed=None) -> list:
    """``worker(*item)`` for every item, ``jobs`` at a time, each in its own spawned process.

    ``crashed(item, exc)`` makes the result for an item whose worker process died.
    """
    results = []
    if jobs <= 1:
        for item in items:
            results.append(worker(*item))
            if on_done:
                on_done(results[-1])
        return results
    context = multiprocessing.get_context("spawn")  # a clean interpreter per worker, as Dagster's own executor
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(worker, *item): i for i, item in enumerate(items)}
        done = {}
        for future in as_completed(futures):
            i = futures[future]
            try:
                done[i] = future.result()
            except Exception as exc:  # a worker process died (e.g. a crash inside a native decoder)
                done[i] = crashed(items[i], exc)
            if on_done:
                on_done(done[i])
    return [done[i] for i in range(len(items))]


def run_partitions(
    keys: list[str],
    storage: StorageResource,
    on_outcome=None,
    log_level: str = "WARNING",
    jobs: int = 1,
) -> list[PartitionOutcome]:
    """Each partition is its own run; ``jobs`` of them at once, each in its own process."""
    registry = load_registry(storage.registry_dir)
    items = [(k, registry[k].path if k in registry else "?", log_level) for k in keys]
    return run_in_workers(
        run_partition, items, jobs, on_outcome,
        crashed=lambda item, exc: PartitionOutcome(item[0], item[1], "", False, f"worker process failed: {exc!r}"),
    )


def run_all(
    only_keys: list[str] | None = None, on_outcome=None, log_level: str = "WARNING", jobs: int = 1
) -> RunSummary:
    instance = dg.DagsterInstance.get()
    storage = StorageResource()
    ensure_pools(instance)
    summary = RunSummary()
    summary.registered, summary.rejected = register_inbox(instance, storage)
    summary.manifest_problems = manifest_problems(storage.inbox_dir)
    keys = sorted(instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME))
    if only_keys:
        unknown = sorted(set(only_keys) - set(keys))
        if unknown:
            raise SystemExit(f"unknown video partition(s): {', '.join(unknown)}")
        keys = [k for k in keys if k in set(only_keys)]
    summary.outcomes = run_partitions(keys, storage, on_outcome, log_level, jobs)
    return summary
