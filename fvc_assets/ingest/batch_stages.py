"""Batches the inbox sensor starts, carried through the stages: one run per stage over consecutive videos.

When more videos wait than the ``batching`` resource's threshold, the inbox sensor requests each
batch's first stage (``ingest``) as one run over a range of partitions, tagged with the stages still
to come. ``batch_stages`` (a sensor, on by default) watches those runs: when one ends, it requests
the next stage for the batch's videos that did not fail (a failed video leaves the batch; the range
is cut around it). Run keys make each request once, whatever the cursor.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fvc_assets.launch.outcomes import batch_outcome
from fvc_assets.launch.plan import PARTITION_TAG
from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME
from fvc_core.batches import contiguous_batches

BATCH_OF_TAG = "fvc/batch_of"
SENSOR_BATCHES = "inbox_sensor"
NEXT_STAGES_TAG = "fvc/next_stages"  # the stage jobs still to run for this batch, in order
# A run that ended this long before the cursor is looked at again (clocks, equal timestamps):
# its run key keeps the request from being made twice.
CLOCK_SLACK = timedelta(minutes=2)


def stage_requests(order: list[str], keys: list[str], size: int, stages: list[str], key_prefix: str,
                   runs_at_once: int = 1) -> list[dg.RunRequest]:
    """The first of ``stages`` for ``keys``, as runs over consecutive partitions of up to ``size``
    (smaller, down to ``runs_at_once`` batches: ``contiguous_batches``)."""
    first, rest = stages[0], stages[1:]
    requests = []
    for batch in contiguous_batches(order, keys, size, runs_at_once):
        tags = {BATCH_OF_TAG: SENSOR_BATCHES, NEXT_STAGES_TAG: ",".join(rest)}
        span = batch[0] if len(batch) == 1 else f"{batch[0]}..{batch[-1]}"
        if len(batch) == 1:
            requests.append(dg.RunRequest(job_name=first, partition_key=batch[0], tags=tags,
                                          run_key=f"{key_prefix}:{first}:{span}"))
        else:
            tags.update({ASSET_PARTITION_RANGE_START_TAG: batch[0], ASSET_PARTITION_RANGE_END_TAG: batch[-1]})
            requests.append(dg.RunRequest(job_name=first, tags=tags, run_key=f"{key_prefix}:{first}:{span}"))
    return requests


def run_videos(run: dg.DagsterRun, order: list[str]) -> list[str]:
    """The videos a run ran: its partition, or the partitions of its range."""
    if PARTITION_TAG in run.tags:
        return [run.tags[PARTITION_TAG]]
    start, end = run.tags[ASSET_PARTITION_RANGE_START_TAG], run.tags[ASSET_PARTITION_RANGE_END_TAG]
    return order[order.index(start):order.index(end) + 1]


def batch_stages_sensor(stage_jobs: list) -> dg.SensorDefinition:
    @dg.sensor(
        name="batch_stages",
        jobs=stage_jobs,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Carries each batch the inbox sensor started through the stages after its first: when a "
                    "batch's run ends, requests the next stage for its videos that did not fail.",
    )
    def batch_stages(context: dg.SensorEvaluationContext):
        since = float(context.cursor) if context.cursor else 0.0
        records = context.instance.get_run_records(
            dg.RunsFilter(tags={BATCH_OF_TAG: SENSOR_BATCHES},
                          statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
                          updated_after=datetime.fromtimestamp(since, timezone.utc) - CLOCK_SLACK),
            order_by="update_timestamp", ascending=True, limit=200)
        order = context.instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME)
        requests: list[dg.RunRequest] = []
        for record in records:
            run = record.dagster_run
            since = max(since, record.update_timestamp.timestamp())
            stages = [s for s in run.tags.get(NEXT_STAGES_TAG, "").split(",") if s]
            videos = run_videos(run, order)
            failed = batch_outcome(context.instance, run, videos)
            for key, reason in failed.items():
                context.log.warning(f"{key}: failed in {run.job_name} (run {run.run_id[:8]}): {reason}")
            remaining = [k for k in videos if k not in failed]
            if stages and remaining:
                requests += stage_requests(order, remaining, len(videos), stages, run.run_id)
        if not requests:
            return dg.SensorResult(cursor=str(since), skip_reason="no batch ended with a stage to follow")
        return dg.SensorResult(run_requests=requests, cursor=str(since))

    return batch_stages
