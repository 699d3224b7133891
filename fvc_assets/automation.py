"""Refresh when new videos land: automation conditions for the catalog and folds, and the retrain sensor.

The inbox sensor runs stages 1-4 per video. After that:

* ``video_catalog`` and ``folds`` carry an ``AutomationCondition`` (evaluated by
  ``stage5_automation``, a sensor that is on by default). They are requested once
  every per-video run that was queued with them has finished, so ten videos that
  land together give one catalog refresh, not ten.
* ``retrain_sensor`` then trains every ``fold_results`` partition whose data
  version (hash of catalog + folds, and the training settings) differs from the
  current one, base models first, then the ensemble, then ``compare``. It starts
  only when ``no_leakage`` passed on the latest ``folds``, and each partition is
  requested once per data version: a failed step is not retried in a loop, and a
  refresh that changed nothing retrains nothing.

Nothing runs on a schedule: only sensors and people start runs.
"""

import dagster as dg
from fvc_assets.jobs import COMPARE_JOB, VIDEO_PIPELINE_JOB, compare_job, train_job
from fvc_assets.partitions import FOLDS, MODELS
from fvc_assets.train.assets import NO_LEAKAGE
from fvc_assets.train.fold_assets import data_version
from fvc_assets.train.models.registry import base_models
from fvc_resources.storage import StorageResource
from fvc_resources.training import TrainingResource

STAGE5_AUTOMATION_SENSOR = "stage5_automation"
RETRAIN_SENSOR = "retrain_sensor"
AUTOMATED_ASSETS = ("video_catalog", "folds")
CATALOG_KEY, FOLDS_KEY = dg.AssetKey("video_catalog"), dg.AssetKey("folds")
FOLD_RESULTS_KEY = dg.AssetKey("fold_results")
DATA_VERSION_TAG = "dagster/data_version"
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
             dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]

AC = dg.AutomationCondition


def catalog_condition() -> dg.AutomationCondition:
    """A per-video partition got a new data version since we last ran, and none of them is queued or running.

    Per-video assets version their output tables (``table_version``), so re-running
    an unchanged video gives the same versions and refreshes nothing. Unlike
    ``eager()`` it does not wait for missing parents: a video whose run failed
    would otherwise hold the catalog back forever (the catalog leaves such videos
    out and names them in ``catalog_complete``).
    """
    new_data = AC.any_deps_match(AC.data_version_changed() | AC.will_be_requested()).with_label("any_deps_new_data")
    return (
        new_data.since_last_handled()
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
    ).with_label("after_video_runs_settle")


def folds_condition() -> dg.AutomationCondition:
    """Eager on the catalog (same tick, so the same run), and only over a catalog that passed its blocking checks."""
    return (AC.eager() & AC.all_deps_blocking_checks_passed()).with_label("eager_after_catalog")


CONDITIONS = {"video_catalog": catalog_condition, "folds": folds_condition}


def with_automation(assets: list) -> list:
    """The same assets, with the automation conditions of ``video_catalog`` and ``folds`` attached."""
    out = []
    for asset in assets:
        keys = {k.to_user_string() for k in getattr(asset, "keys", ())}
        names = keys & CONDITIONS.keys()
        if names:
            asset = asset.with_attributes(automation_condition={
                dg.AssetKey(n): CONDITIONS[n]() for n in names
            })
        out.append(asset)
    return out


stage5_automation_sensor = dg.AutomationConditionSensorDefinition(
    STAGE5_AUTOMATION_SENSOR,
    target=dg.AssetSelection.assets(*AUTOMATED_ASSETS),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    description="Rebuilds video_catalog and folds once the per-video runs of newly landed videos have settled.",
)


# --- retraining ---------------------------------------------------------------------------------

def upstream_busy(instance: dg.DagsterInstance) -> str | None:
    """Why training must wait: per-video or catalog/folds runs still queued or running."""
    for run in instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT)):
        if run.job_name == VIDEO_PIPELINE_JOB:
            return f"video run {run.run_id[:8]} in flight"
        if run.asset_selection and run.asset_selection & {CATALOG_KEY, FOLDS_KEY}:
            return f"catalog/folds run {run.run_id[:8]} in flight"
    return None


def leakage_gate(instance: dg.DagsterInstance) -> str | None:
    """Why training must not start: no folds yet, or no_leakage did not pass on the latest folds."""
    latest = instance.get_latest_materialization_event(FOLDS_KEY)
    if latest is None:
        return "folds not materialised yet"
    key = dg.AssetCheckKey(FOLDS_KEY, NO_LEAKAGE)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key]).get(key)
    if record is None or record.run_id != latest.run_id:
        return "no_leakage has not run on the latest folds"
    evaluation = record.event.asset_check_evaluation if record.event and record.event.dagster_event else None
    if evaluation is None or not evaluation.passed:
        return "no_leakage failed on the latest folds: fix the split before training"
    return None


def stale_partitions(instance: dg.DagsterInstance, version: str) -> list[str]:
    """fold_results partitions whose latest materialisation is not of this data version (or missing)."""
    tags = instance.event_log_storage.get_latest_tags_by_partition(
        FOLD_RESULTS_KEY, dg.DagsterEventType.ASSET_MATERIALIZATION, [DATA_VERSION_TAG])
    keys = [dg.MultiPartitionKey({"model": m, "fold": f}) for m in MODELS for f in FOLDS]
    return [k for k in keys if tags.get(k, {}).get(DATA_VERSION_TAG) != version]


def next_requests(stale: list, version: str) -> list[dg.RunRequest]:
    """Base models first; the ensemble (which reads their scores) once they are all current; then compare."""
    base = set(base_models(MODELS))
    first = [k for k in stale if k.keys_by_dimension["model"] in base] or stale
    if first:
        return [dg.RunRequest(partition_key=k, run_key=f"{version}:{k}", job_name=train_job.name) for k in first]
    return [dg.RunRequest(run_key=f"{COMPARE_JOB}:{version}", job_name=COMPARE_JOB)]


@dg.sensor(
    name=RETRAIN_SENSOR,
    jobs=[train_job, compare_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Trains every fold_results partition not yet on the current catalog + folds, then compares.",
)
def retrain_sensor(context: dg.SensorEvaluationContext, storage: StorageResource, training: TrainingResource):
    reason = upstream_busy(context.instance) or leakage_gate(context.instance)
    if reason:
        return dg.SkipReason(reason)
    version = data_version(storage.catalog_path, storage.folds_path) + ":" + training.settings().fingerprint()
    # Run keys make each request once per data version; repeats on later ticks are dropped by the daemon.
    return next_requests(stale_partitions(context.instance, version), version)
