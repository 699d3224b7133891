"""The inbox sensor's registration, done once by ``fvc run``, and the instance's GPU pool limit."""

from __future__ import annotations

import time

import dagster as dg
from fvc_assets.ingest.registration import InboxScan, load_registry, register_inbox_files
from fvc_assets.ingest.sensors import sync_partitions
from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME
from fvc_resources.storage import StorageResource

GPU_POOL = "gpu"


def ensure_pools(instance: dg.DagsterInstance) -> None:
    """One GPU step at a time on this instance, whatever the pool default says."""
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        info = storage.get_concurrency_info(GPU_POOL)
        if info.slot_count != 1:
            storage.set_concurrency_slots(GPU_POOL, 1)


def register_inbox(instance: dg.DagsterInstance, storage: StorageResource, wait_limit_s: float = 60.0,
                   on_wait=None) -> InboxScan:
    """New (and changed) files get keys and partitions; their runs are fvc run's (the inbox sensor does
    not request them). Files still being written are waited for, up to ``wait_limit_s``; those
    still changing then stay in ``waiting`` for the next run."""
    settle = storage.inbox_settle_seconds
    deadline = time.monotonic() + wait_limit_s
    scan = register_inbox_files(storage.inbox_dir, storage.registry_dir, settle)
    while scan.waiting and time.monotonic() < deadline:
        if on_wait:
            on_wait(scan.waiting)
        soonest = min(settle - w.modified_seconds_ago for w in scan.waiting)
        time.sleep(min(max(soonest, 0.2), max(deadline - time.monotonic(), 0.0)))
        more = register_inbox_files(storage.inbox_dir, storage.registry_dir, settle)
        scan = InboxScan(new=scan.new + more.new, rejected=more.rejected, waiting=more.waiting,
                         changed=scan.changed + more.changed)
    missing = sync_partitions(instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME), list(load_registry(storage.registry_dir)))
    if missing:
        instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, missing)
    return scan
