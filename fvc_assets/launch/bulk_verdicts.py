"""Verdicts read in bulk for a per-video job: the stale-status resolver's answer where the records
alone decide it, and "ask the resolver" where they do not.

The resolver costs about 50 ms a partition (each asset, each parent, a few queries). For a job
whose assets read only their own partition of each other (``incremental_plan.is_incremental``), the
same verdict mostly follows from each asset's latest materialisation of the partition, read in bulk
(one query for the latest storage id of every partition, then the records by storage id, a
thousand at a time). For each asset in graph order:

- no materialisation: ``<asset> missing`` (the resolver: MISSING);
- a code version other than the asset's: ``<asset> stale: has a new code version`` (the resolver's
  first cause whenever it holds: a cause without a dependency sorts before one with);
- for each parent, the event its materialisation read (``dagster/input_event_pointer``) is still the
  parent partition's latest: this parent gives no cause;

and if every asset passes, the partition is up to date. Anything else (a parent materialised since,
a materialisation without lineage tags, a dependency added or removed) is left to the resolver,
which gives the cause and its wording. A partition whose last run failed says so first, as
``plan.out_of_date`` does.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.data_version import extract_data_provenance_from_entry

from fvc_assets.launch.plan import job_assets

ASK = None  # the verdict: ask the resolver
RECORDS_PER_QUERY = 1000


def latest_records(instance: dg.DagsterInstance, key: dg.AssetKey, partitions: set[str]) -> dict:
    """partition -> its latest materialisation record, for those of ``partitions`` that have one."""
    ids = instance.event_log_storage.get_latest_storage_id_by_partition(key, dg.DagsterEventType.ASSET_MATERIALIZATION)
    wanted = sorted(i for p, i in ids.items() if p in partitions)  # (no SQL IN over 100,000 keys)
    records = {}
    for start in range(0, len(wanted), RECORDS_PER_QUERY):
        chunk = wanted[start:start + RECORDS_PER_QUERY]
        result = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, storage_ids=chunk),
                                                 limit=len(chunk))
        records.update({r.partition_key: r for r in result.records})
    return records


def bulk_verdicts(instance: dg.DagsterInstance, defs: dg.Definitions, job_name: str, partitions: list[str],
                  failed: dict[str, str]) -> dict[str, str | None]:
    """partition -> "" (up to date), the reason it must run (``out_of_date``'s wording), or ``ASK``."""
    graph = defs.resolve_asset_graph()
    keys = job_assets(defs, job_name)
    verdicts: dict[str, str | None] = {p: f"its last run {failed[p][:8]} failed" for p in partitions if p in failed}
    open_ = {p for p in partitions if p not in verdicts}
    latest: dict[dg.AssetKey, dict] = {}
    for key in keys:
        if not open_:
            break
        node = graph.get(key)
        latest[key] = latest_records(instance, key, open_)
        for partition in sorted(open_):
            record = latest[key].get(partition)
            if record is None:
                verdicts[partition] = f"{key.to_user_string()} missing"
                continue
            provenance = extract_data_provenance_from_entry(record.event_log_entry)
            if provenance is None or set(provenance.input_data_versions) != set(node.parent_keys):
                verdicts[partition] = ASK
                continue
            if node.code_version and provenance.code_version != node.code_version:
                verdicts[partition] = f"{key.to_user_string()} stale: has a new code version"
                continue
            for parent in node.parent_keys:
                read = provenance.input_storage_ids.get(parent)
                parent_record = latest[parent].get(partition)
                if read is None or parent_record is None or parent_record.storage_id > read:
                    verdicts[partition] = ASK
                    break
        open_ -= set(verdicts)
    verdicts.update({p: "" for p in open_})
    return {p: verdicts[p] for p in partitions}
