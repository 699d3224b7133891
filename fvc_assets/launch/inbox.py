"""The inbox sensor's registration, done once by ``fvc run``, and the instance's GPU pool limit."""

from __future__ import annotations

import dagster as dg
from fvc_assets.ingest.registration import Rejected, load_registry, register_new_videos
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


def register_inbox(instance: dg.DagsterInstance, storage: StorageResource) -> tuple[list[str], list[Rejected]]:
    """New files get keys and partitions (their runs are fvc run's: the inbox sensor does not request them)."""
    new, rejected = register_new_videos(storage.inbox_dir, storage.registry_dir)
    missing = sync_partitions(instance, list(load_registry(storage.registry_dir)))
    if missing:
        instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, missing)
    return [r.key for r in new], rejected
