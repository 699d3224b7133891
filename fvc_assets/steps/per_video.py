"""``@over_videos``: a per-video asset runs one video, or a batch of videos in one step.

Put it under ``@dg.asset(..., output_required=False)``, above ``@sole_writer`` and ``@reports_cost``.
The body is written for one video (``context.partition_key``) and returns its ``MaterializeResult``.

- A run of one partition returns that result as it is (Dagster records the materialisation).
- A run over a range of partitions (batches of ``fvc run`` and the inbox sensor, ``fvc_core/batches.py``) calls
  the body once per video, with a view of the context that has that video's key. Each video that
  succeeds gets its own materialisation (its metadata, its data version, the lineage tags Dagster
  writes for a one-partition run, from its own upstream partitions) and its own check results. A
  video that fails (an error, or a blocking check that failed) is logged and named, and the batch
  goes on. At the end the step fails, naming every failed video with its reason (metadata
  ``failed_videos``), so the run fails and Dagster marks the partitions of the videos that raised failed
  (planned, not materialised); one whose blocking check failed keeps its materialisation and the failed
  check, as after a one-video run. The others stay materialised.

Why not the output Dagster materialises for each partition of a range: it carries one data version
and one set of metadata for the whole range, where every video has its own.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.definitions.data_version import (
    CODE_VERSION_TAG,
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
    extract_data_version_from_entry,
    get_input_data_version_tag,
    get_input_event_pointer_tag,
)

FAILED_VIDEOS = "failed_videos"  # step-failure metadata of a batch: {video key: reason}


class VideoLog:
    """The step's log, each line prefixed with the video it is about (a batch's lines interleave none,
    but read alone they would not say which video)."""

    def __init__(self, log, key: str):
        self._log, self._key = log, key

    def __getattr__(self, level):
        emit = getattr(self._log, level)
        return lambda message, *args, **kwargs: emit(f"{self._key}: {message}", *args, **kwargs)


class OneVideo:
    """The step's context as one video of a batch sees it: its own partition key and log lines; the
    metadata the body adds is kept for that video's materialisation. Everything else is the step's."""

    def __init__(self, context: dg.AssetExecutionContext, key: str):
        self._context = context
        self.partition_key = key
        self.has_partition_key = True
        self.log = VideoLog(context.log, key)
        self.metadata: dict = {}

    def add_asset_metadata(self, metadata, asset_key=None, partition_key=None) -> None:
        self.metadata.update(metadata)

    def __getattr__(self, name):
        return getattr(self._context, name)


def failure_reason(error: Exception) -> str:
    """What a one-video run would say: a dg.Failure's description, else the error."""
    if isinstance(error, dg.Failure) and error.description:
        return error.description
    return f"{type(error).__name__}: {error}"


def latest_materialization(instance: dg.DagsterInstance, asset_key: dg.AssetKey, key: str):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[key]), limit=1).records
    return records[0] if records else None


def lineage_tags(context: dg.AssetExecutionContext, key: str, data_version: dg.DataVersion) -> dict[str, str]:
    """The tags Dagster writes on a one-partition run's materialisation: code version, the data version
    (user-provided), and for each parent the data version and event of its partition ``key``."""
    asset_key = context.asset_key
    tags = {CODE_VERSION_TAG: context.assets_def.code_versions_by_key[asset_key] or context.run.run_id}
    for parent in sorted(context.assets_def.asset_deps[asset_key], key=lambda k: k.to_user_string()):
        record = latest_materialization(context.instance, parent, key)
        if record is None:  # the body read the parent's files, so this is a record deleted since
            raise dg.Failure(description=f"{parent.to_user_string()} has no materialisation for {key!r}")
        tags[get_input_data_version_tag(parent)] = extract_data_version_from_entry(record.event_log_entry).value
        tags[get_input_event_pointer_tag(parent)] = str(record.storage_id)
    tags[DATA_VERSION_TAG] = data_version.value
    tags[DATA_VERSION_IS_USER_PROVIDED_TAG] = "true"
    return tags


def check_evaluation(context: dg.AssetExecutionContext, key: str, result: dg.AssetCheckResult,
                     target) -> dg.AssetCheckEvaluation:
    check_key = dg.AssetCheckKey(context.asset_key, result.check_name)
    spec = context.assets_def.get_spec_for_check_key(check_key)
    return dg.AssetCheckEvaluation(
        asset_key=context.asset_key,
        check_name=result.check_name,
        passed=result.passed,
        metadata=result.metadata,
        target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
            run_id=target.run_id, storage_id=target.storage_id, timestamp=target.timestamp),
        severity=result.severity,
        description=result.description,
        blocking=spec.blocking,
        partition=key,
    )


def blocks(evaluation: dg.AssetCheckEvaluation) -> bool:
    return bool(evaluation.blocking) and not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR


def batch_failure(failed: dict[str, str], total: int, asset: str) -> dg.Failure:
    listed = "; ".join(f"{key}: {reason}" for key, reason in list(failed.items())[:5])
    more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
    return dg.Failure(
        description=f"{asset}: {len(failed)} of {total} videos failed ({listed}{more})",
        metadata={FAILED_VIDEOS: dg.MetadataValue.json(failed)},
    )


def over_videos(fn):
    @functools.wraps(fn)  # Dagster reads the parameters (resources, config) through __wrapped__
    def wrapper(context: dg.AssetExecutionContext, *args, **kwargs) -> Iterator:
        if context.has_partition_key:
            yield fn(context, *args, **kwargs)
            return
        yield from run_batch(fn, context, *args, **kwargs)

    return wrapper


def run_batch(fn, context: dg.AssetExecutionContext, *args, **kwargs) -> Iterator:
    asset_key, keys = context.asset_key, list(context.partition_keys)
    failed: dict[str, str] = {}
    for key in keys:
        video = OneVideo(context, key)
        try:
            result: dg.MaterializeResult = fn(video, *args, **kwargs)
        except Exception as error:  # this video's failure is its own: the rest of the batch goes on
            failed[key] = failure_reason(error)
            context.log.error(f"{key}: {failed[key]}")
            continue
        yield dg.AssetMaterialization(asset_key=asset_key, partition=key, metadata=video.metadata,
                                      tags=lineage_tags(context, key, result.data_version))
        target = latest_materialization(context.instance, asset_key, key)  # the one just recorded
        for check in result.check_results or []:
            evaluation = check_evaluation(context, key, check, target)
            yield evaluation
            if blocks(evaluation):
                failed.setdefault(key, f"check {check.check_name} failed")
    # The checks' outputs (Nothing): their results are the evaluations above, per video.
    for check_key in context.selected_asset_check_keys:
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(check_key))
    context.log.info(f"{len(keys) - len(failed)} of {len(keys)} videos done")
    if failed:
        raise batch_failure(failed, len(keys), asset_key.to_user_string())
