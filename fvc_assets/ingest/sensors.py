"""The inbox sensor: new files become ``videos`` partitions and run requests, once each: a run of
``video_pipeline`` per video, or, when more wait than the ``batching`` resource's threshold, batches
(one run per stage over consecutive videos, carried on by ``batch_stages``)."""


import hashlib
import json
import os

import dagster as dg
from fvc_assets.ingest.batch_stages import stage_requests
from fvc_assets.ingest.manifest import manifest_problems
from fvc_assets.ingest.registration import register_inbox_files
from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME, videos_partitions
from fvc_resources.batching import BatchingPolicy
from fvc_resources.storage import StorageResource


# Folder in the registry with one empty file per key whose partition the inbox sensor added.
SENSOR_MARKS = ".inbox_sensor"


def sync_partitions(existing: list[str], registry_keys: list[str]) -> list[str]:
    """Keys with a registry record but no partition yet (new, or left by an interrupted tick)."""
    known = set(existing)
    return [k for k in sorted(registry_keys) if k not in known]


def inbox_sensor_factory(pipeline_job, stage_jobs: list, stages: tuple[str, ...]) -> dg.SensorDefinition:
    """``pipeline_job`` runs one video; ``stages`` (names of ``stage_jobs``, in the graph's order) run a batch."""

    @dg.sensor(
        name="inbox_sensor",
        jobs=[pipeline_job, *stage_jobs],
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Registers new files in $FVC_DATA_DIR/inbox as `videos` partitions and runs them, "
                    "once each has stopped changing (storage: inbox_settle_seconds): a run per video, or "
                    "batches when more wait than the batching resource's threshold.",
    )
    def inbox_sensor(context: dg.SensorEvaluationContext, storage: StorageResource, batching: BatchingPolicy):
        # Cursor: the keys whose runs the last tick requested, and the rejected files and manifest
        # problems already reported (each is logged once). It never lists every video: the daemon
        # stores it with every tick, four times a minute.
        cursor = json.loads(context.cursor) if context.cursor else {}
        requested = set(cursor.get("requested", []))
        reported = set(cursor.get("rejected", []))

        scan = register_inbox_files(storage.inbox_dir, storage.registry_dir, storage.inbox_settle_seconds)
        registry = scan.registry
        existing = context.instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME)
        to_add = sync_partitions(existing, list(registry))
        for item in scan.rejected:
            if item.path not in reported:
                context.log.warning(f"not ingested: {item.path}: {item.reason}")
                reported.add(item.path)
        for item in scan.changed:
            context.log.warning(f"changed: {item.path} holds new content, registered as partition {item.new_key}; "
                                f"{item.old_key} keeps its outputs")
        for item in scan.waiting:
            context.log.info(f"waiting: {item.path} is still being written "
                             f"(modified {item.modified_seconds_ago:.0f}s ago)")
        for problem in manifest_problems(storage.inbox_dir):
            if problem not in reported:
                context.log.warning(f"manifest: {problem}")
                reported.add(problem)
        # The daemon adds a tick's partitions before it records the tick's run requests and cursor,
        # so a daemon killed in between leaves partitions whose runs no stored cursor requested.
        # Hence every partition this sensor adds is marked on disk first, and a marked key is
        # requested until a stored cursor says its run was (its run key makes the daemon create
        # it at most once); the mark goes then. Partitions `fvc run` adds carry no mark: their
        # runs are fvc run's.
        marks = storage.registry_dir / SENSOR_MARKS
        marks.mkdir(exist_ok=True)
        for k in requested:  # this cursor was stored, so the runs it names were requested
            (marks / k).unlink(missing_ok=True)
        for k in to_add:
            (marks / k).touch()
        to_run = sorted(k for k in os.listdir(marks) if k in registry and k not in requested)
        new_cursor = json.dumps({"requested": to_run, "rejected": sorted(reported)})
        if not to_add and not to_run:
            waiting = f"; waiting for {len(scan.waiting)} file(s) still being written" if scan.waiting else ""
            return dg.SensorResult(cursor=new_cursor, skip_reason=f"no new videos in the inbox{waiting}")
        policy = batching.policy()
        if policy.applies(len(to_run)):
            # The partitions in the order they will have once this tick's are added (after the existing ones).
            order = [*existing, *to_add]
            contents = hashlib.sha256("".join(registry[k].sha256 for k in to_run).encode()).hexdigest()[:12]
            runs_at_once = context.instance.get_concurrency_config().run_queue_config.max_concurrent_runs
            requests = stage_requests(order, to_run, policy.size, list(stages), f"inbox:{contents}", runs_at_once)
        else:
            requests = [dg.RunRequest(job_name=pipeline_job.name, partition_key=k,
                                      run_key=f"{k}:{registry[k].sha256[:12]}") for k in to_run]
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[videos_partitions.build_add_request(to_add)] if to_add else [],
            cursor=new_cursor,
        )

    return inbox_sensor
