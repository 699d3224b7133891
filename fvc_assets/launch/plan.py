"""What ``fvc run`` materialises: the partitions of its jobs that are missing, failed or stale.

Nothing here knows the stages. The jobs are ordered by the asset graph (a job
comes after every job whose assets feed its own), and a partition is out of
date by what Dagster records: no materialisation, a last run that failed, a
stale status (code version changed, an upstream data version changed: the
same verdict the UI shows), or, for an asset that reads every partition of a
partitioned parent, a parent partition materialised after it. An asset held back
by a blocking check that failed on its parent's latest materialisation is not
out of date: the check refused that version, and only a new one runs it again.
"""

from __future__ import annotations

import graphlib
from datetime import datetime
from collections.abc import Iterable

import dagster as dg
from dagster._core.definitions.data_version import StaleStatus
from dagster._core.workspace.context import WorkspaceRequestContext

PARTITION_TAG = "dagster/partition"


def job_assets(defs: dg.Definitions, job_name: str) -> list[dg.AssetKey]:
    """The assets a job materialises, upstream first."""
    graph = defs.resolve_asset_graph()
    keys = set(defs.resolve_job_def(job_name).asset_layer.selected_asset_keys)
    return [k for k in graph.toposorted_asset_keys if k in keys]


def jobs_in_graph_order(defs: dg.Definitions, job_names: Iterable[str]) -> list[str]:
    """``job_names`` sorted so that a job comes after every job whose assets are upstream of its own."""
    graph = defs.resolve_asset_graph()
    assets = {name: set(job_assets(defs, name)) for name in job_names}
    sorter: graphlib.TopologicalSorter = graphlib.TopologicalSorter()
    for name, keys in assets.items():
        upstream = set().union(*(graph.get_ancestor_asset_keys(k) for k in keys)) - keys
        sorter.add(name, *[other for other, theirs in assets.items() if other != name and theirs & upstream])
    return list(sorter.static_order())


def _latest_storage_id(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> int | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    return records[0].storage_id if records else None


def reads_other_partitions(defs: dg.Definitions, key: dg.AssetKey, parent: dg.AssetKey) -> bool:
    """Does ``key`` read a partitioned ``parent`` across its partitions (every video, every model x fold)?"""
    graph = defs.resolve_asset_graph()
    child_def, parent_def = graph.get(key).partitions_def, graph.get(parent).partitions_def
    return parent_def is not None and child_def != parent_def


def _newer_parent(instance: dg.DagsterInstance, defs: dg.Definitions, key: dg.AssetKey,
                  storage_id: int) -> str | None:
    """A parent read across its partitions, materialised after ``key`` (the stale-status resolver does not
    compare such dependencies once they have many partitions)."""
    graph = defs.resolve_asset_graph()
    for parent in sorted(graph.get(key).parent_keys):
        if reads_other_partitions(defs, key, parent):
            newer = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=parent, after_storage_id=storage_id), limit=1).records
            if newer:
                return f"{parent.to_user_string()} {newer[0].partition_key} materialised since"
    return None


def latest_finished_runs(instance: dg.DagsterInstance, job_name: str,
                         updated_after: datetime | None = None) -> dict[str | None, dg.DagsterRun]:
    """partition (None: unpartitioned) -> the latest finished run of ``job_name`` (among those updated after
    ``updated_after``, if given)."""
    latest: dict[str | None, dg.DagsterRun] = {}
    for run in instance.get_runs(dg.RunsFilter(job_name=job_name, updated_after=updated_after)):  # newest first
        partition = run.tags.get(PARTITION_TAG)
        if run.is_finished and partition not in latest:
            latest[partition] = run
    return latest


def last_run_failed(instance: dg.DagsterInstance, job_name: str) -> dict[str | None, str]:
    """partition (None: unpartitioned) -> run id, for every partition whose latest run of ``job_name`` failed."""
    return {p: r.run_id for p, r in latest_finished_runs(instance, job_name).items()
            if r.status == dg.DagsterRunStatus.FAILURE}


def refused_by_blocking_check(instance: dg.DagsterInstance, defs: dg.Definitions, key: dg.AssetKey) -> str:
    """The name of a blocking check of unpartitioned ``key`` that failed in the run of its latest
    materialisation ("" when none did)."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    graph = defs.resolve_asset_graph()
    blocking = [c for c in graph.asset_check_keys if c.asset_key == key and graph.get_check_spec(c).blocking]
    if not blocking:
        return ""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1).records
    if not records:
        return ""
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(blocking)
    for check_key, record in latest.items():
        if record.status == AssetCheckExecutionRecordStatus.FAILED and record.run_id == records[0].run_id:
            return check_key.name
    return ""


def out_of_date(
    instance: dg.DagsterInstance,
    workspace: WorkspaceRequestContext,
    defs: dg.Definitions,
    job_name: str,
    partitions: list[str | None],
    failed: dict[str | None, str] | None = None,
) -> dict[str | None, str]:
    """partition -> why it must run, for the partitions of ``job_name`` that are not up to date.
    ``failed`` (partition -> run id of a failed latest run) is read from every run of the job if not given."""
    resolver = workspace.stale_status_loader
    failed = last_run_failed(instance, job_name) if failed is None else failed
    keys = job_assets(defs, job_name)
    graph = defs.resolve_asset_graph()
    refused = {k for k in keys if graph.get(k).partitions_def is None and refused_by_blocking_check(instance, defs, k)}
    held_back = dg.AssetSelection.assets(*refused).downstream(include_self=False).resolve(graph) - refused
    reasons: dict[str | None, str] = {}
    for partition in partitions:
        if partition in failed and not (partition is None and refused):  # a refusal is no failure to retry
            reasons[partition] = f"its last run {failed[partition][:8]} failed"
            continue
        for key in keys:
            if key in held_back:
                continue
            status = resolver.get_status(key, partition)
            if status == StaleStatus.MISSING:
                reasons[partition] = f"{key.to_user_string()} missing"
                break
            if status == StaleStatus.STALE:
                causes = resolver.get_stale_causes(key, partition)
                reasons[partition] = f"{key.to_user_string()} stale: {causes[0].reason}" if causes else "stale"
                break
            storage_id = _latest_storage_id(instance, key, partition)
            newer = _newer_parent(instance, defs, key, storage_id) if storage_id is not None else None
            if newer:
                reasons[partition] = f"{key.to_user_string()} stale: {newer}"
                break
    return reasons
