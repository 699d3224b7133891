"""The inbox sensor: new files become ``videos`` partitions and run requests, once each."""


import json

import dagster as dg
from fvc_assets.ingest.registration import load_registry, register_new_videos
from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME, videos_partitions
from fvc_resources.storage import StorageResource


def sync_partitions(instance: dg.DagsterInstance, registry_keys: list[str]) -> list[str]:
    """Keys with a registry record but no partition yet (new, or left by an interrupted tick)."""
    existing = set(instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME))
    return [k for k in sorted(registry_keys) if k not in existing]


def inbox_sensor_factory(job_name: str) -> dg.SensorDefinition:
    @dg.sensor(
        name="inbox_sensor",
        job_name=job_name,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Registers new files in $FVC_DATA_DIR/inbox as `videos` partitions and runs them.",
    )
    def inbox_sensor(context: dg.SensorEvaluationContext, storage: StorageResource):
        # Cursor: the keys this sensor has requested runs for, and files it already reported.
        cursor = json.loads(context.cursor) if context.cursor else {}
        requested = set(cursor.get("requested", []))
        reported = set(cursor.get("rejected", []))

        _new, rejected = register_new_videos(storage.inbox_dir, storage.registry_dir)
        registry = load_registry(storage.registry_dir)
        to_add = sync_partitions(context.instance, list(registry))
        for item in rejected:
            if item.path not in reported:
                context.log.warning(f"not ingested: {item.path}: {item.reason}")
                reported.add(item.path)
        to_run = [k for k in to_add if k not in requested]
        requested.update(to_run)
        new_cursor = json.dumps({"requested": sorted(requested), "rejected": sorted(reported)})
        if not to_add:
            return dg.SensorResult(cursor=new_cursor, skip_reason="no new videos in the inbox")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(partition_key=k, run_key=f"{k}:{registry[k].sha256[:12]}") for k in to_run
            ],
            dynamic_partitions_requests=[videos_partitions.build_add_request(to_add)],
            cursor=new_cursor,
        )

    return inbox_sensor
