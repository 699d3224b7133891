"""Planning that costs what changed, not what exists: ``fvc run``'s verdicts for a per-video job,
kept between plans and re-asked only for the partitions something happened to.

``plan.out_of_date`` asks Dagster's stale-status resolver about every asset of every
partition: about 60 ms a partition, 5.5 minutes at 5,199 videos with nothing to do. Here the
last plan's verdict is kept in the instance's key-value store (``run_storage`` cursor values,
sqlite or PostgreSQL alike) with the event-log storage id it was taken at. The next plan asks
the resolver again only about partitions that

- were not up to date last time, or are new;
- got a materialisation of one of the job's assets since that storage id
  (``get_latest_storage_id_by_partition``, one query per asset);
- had a run of the job end since the last plan (the failed-run verdict);
- lost a materialisation (a wipe writes no event: the materialised partitions, one query per
  asset, must still hold every partition called up to date).

A partition none of this touched keeps its verdict, since what decides it lies in that
partition alone: the job's assets share one partitions definition and read only their own
partition of each other. A job for which that does not hold, a changed code version, or a
changed layout of the kept state make a plan from scratch. Either way, the partitions to decide
are first read in bulk (``bulk_verdicts``: missing, a new code version, nothing read has changed);
the resolver is asked only where the records alone do not decide.
Only a plan of every partition is kept (a plan of some says nothing of the others).
The verdicts, and the reasons given, are ``out_of_date``'s own (a test compares the two).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import dagster as dg
from dagster._core.workspace.context import WorkspaceRequestContext

from fvc_assets.launch.bulk_verdicts import ASK, bulk_verdicts
from fvc_assets.launch.plan import job_assets, latest_finished_runs, out_of_date

STATE_VERSION = 1
# Runs that ended up to this long before the last plan began are looked at again: a run storage's
# update time and this machine's clock need not agree to the second.
RUN_CLOCK_SLACK = timedelta(minutes=5)


def state_key(job_name: str) -> str:
    return f"fvc/plan/{job_name}"


def is_incremental(defs: dg.Definitions, job_name: str) -> bool:
    """Does every verdict of ``job_name`` depend on its own partition alone? All of its assets share
    one partitions definition, and each reads only assets of the job, each its own partition."""
    graph = defs.resolve_asset_graph()
    keys = job_assets(defs, job_name)
    partitions_def = graph.get(keys[0]).partitions_def if keys else None
    if partitions_def is None:
        return False
    for key in keys:
        node = graph.get(key)
        if node.partitions_def != partitions_def:
            return False
        for parent in node.parent_keys:
            if parent not in keys:
                return False
            if not isinstance(graph.get_partition_mapping(key, parent), dg.IdentityPartitionMapping):
                return False
    return True


def _code_versions(defs: dg.Definitions, keys: list[dg.AssetKey]) -> dict[str, str | None]:
    graph = defs.resolve_asset_graph()
    return {k.to_user_string(): graph.get(k).code_version for k in keys}


def _load_state(instance: dg.DagsterInstance, job_name: str) -> dict | None:
    raw = instance.run_storage.get_cursor_values({state_key(job_name)}).get(state_key(job_name))
    if not raw:
        return None
    try:
        state = json.loads(raw)
    except ValueError:
        return None
    return state if state.get("version") == STATE_VERSION else None


def _runs_ended_since(instance: dg.DagsterInstance, job_name: str, since: float | None) -> dict[str, dg.DagsterRun]:
    """partition -> the latest finished run of ``job_name`` updated after ``since`` (all, if None)."""
    updated_after = (datetime.fromtimestamp(since, timezone.utc) - RUN_CLOCK_SLACK) if since is not None else None
    return {p: run for p, run in latest_finished_runs(instance, job_name, updated_after).items() if p is not None}


def plan_partitions(
    instance: dg.DagsterInstance,
    workspace: WorkspaceRequestContext,
    defs: dg.Definitions,
    job_name: str,
    partitions: list[str | None],
) -> dict[str | None, str]:
    """partition -> why it must run, for the partitions of ``job_name`` that are not up to date:
    ``out_of_date``'s answer, asked only where something changed since the last plan."""
    if not is_incremental(defs, job_name) or None in partitions:
        return out_of_date(instance, workspace, defs, job_name, partitions)
    keys = job_assets(defs, job_name)
    started = time.time()
    cursor = instance.event_log_storage.get_maximum_record_id() or 0  # verdicts below hold as of here
    code_versions = _code_versions(defs, keys)
    state = _load_state(instance, job_name)
    if state is not None and state["code_versions"] != code_versions:
        state = None
    wanted = set(partitions)

    # Partitions whose latest finished run failed, kept up to date from the runs that ended since.
    failed: dict[str, str] = dict(state["failed"]) if state else {}
    ended = _runs_ended_since(instance, job_name, state["planned_at"] if state else None)
    for partition, run in ended.items():
        if run.status == dg.DagsterRunStatus.FAILURE:
            failed[partition] = run.run_id
        else:
            failed.pop(partition, None)

    materialized = {k: instance.get_materialized_partitions(k) for k in keys}
    fresh = set(state["fresh"]) & wanted if state else set()
    if fresh:
        fresh -= set(ended)
        for key in keys:
            fresh &= materialized[key]  # a wiped materialisation leaves no event behind
            fresh -= set(instance.event_log_storage.get_latest_storage_id_by_partition(
                key, dg.DagsterEventType.ASSET_MATERIALIZATION, after_cursor=state["cursor"]))

    to_ask = [p for p in partitions if p not in fresh]
    # What the records decide in bulk; the resolver is asked about the rest.
    verdicts = bulk_verdicts(instance, defs, job_name, to_ask, failed)
    reasons: dict[str | None, str] = {p: why for p, why in verdicts.items() if why}
    asked = [p for p in to_ask if verdicts[p] is ASK]
    if asked:
        reasons.update(out_of_date(instance, workspace, defs, job_name, asked, failed=failed))

    graph = defs.resolve_asset_graph()
    every = set(graph.get(keys[0]).partitions_def.get_partition_keys(dynamic_partitions_store=instance))
    if wanted != every:  # a plan of some videos says nothing of the others since the kept cursor: keep it
        return {p: reasons[p] for p in partitions if p in reasons}
    instance.run_storage.set_cursor_values({state_key(job_name): json.dumps({
        "version": STATE_VERSION, "cursor": cursor, "planned_at": started, "code_versions": code_versions,
        "failed": {p: r for p, r in failed.items() if p in wanted},
        "fresh": sorted(p for p in partitions if p not in reasons),
    })})
    return {p: reasons[p] for p in partitions if p in reasons}
