"""Refresh when new videos land, declared on the stage-5 assets: one automation condition, written once.

The inbox sensor runs stages 1-4 per video. Every stage-5 asset (``video_catalog``,
``folds``, ``fold_results``, ``ensemble_results``, ``model_comparison``) carries
the same condition, evaluated by ``stage5_automation`` (a sensor, on by default):

* some asset it depends on has a new data version (per-video tables, the catalog,
  the folds, base-model scores; each is a hash of the content, so re-running an
  unchanged video or refreshing an unchanged catalog retrains nothing), and
* nothing it depends on is still queued, running, or being requested in this tick
  (so ten videos that land together give one catalog refresh, and the ensemble
  waits for every base model), and
* from ``folds`` on: the blocking checks of what it reads passed (no training on a
  split that failed ``no_leakage``).

Each new data version is handled once: a failed partition is not retried in a loop.
The order (catalog, folds, base models, ensemble, comparison) is the asset graph's.
Nothing runs on a schedule: only sensors, people and ``fvc run`` start runs.
"""

import dagster as dg

STAGE5_AUTOMATION_SENSOR = "stage5_automation"
AUTOMATED_ASSETS = ("video_catalog", "folds", "fold_results", "ensemble_results", "model_comparison")

AC = dg.AutomationCondition


def after_new_data_settles() -> dg.AutomationCondition:
    """An upstream data version changed since this asset last ran, and none of its upstreams is in flight.

    Unlike ``eager()`` it does not wait for missing parents: a video whose run failed
    would otherwise hold the catalog back forever (the catalog leaves such videos
    out and names them in ``catalog_complete``).
    """
    new_data = AC.any_deps_match(AC.data_version_changed() | AC.will_be_requested()).with_label("any_deps_new_data")
    upstream_busy = AC.any_deps_match(AC.in_progress() | AC.will_be_requested()).with_label("any_deps_in_flight")
    return (new_data.since_last_handled() & ~upstream_busy & ~AC.in_progress()).with_label("after_new_data_settles")


def after_new_data_settles_and_checks_pass() -> dg.AutomationCondition:
    return (after_new_data_settles() & AC.all_deps_blocking_checks_passed()).with_label(
        "after_new_data_settles_and_checks_pass")


# The catalog reads every video, failed ones too (it names them); what follows reads checked tables only.
CONDITIONS = {
    "video_catalog": after_new_data_settles,
    **{name: after_new_data_settles_and_checks_pass for name in AUTOMATED_ASSETS[1:]},
}


def with_automation(assets: list) -> list:
    """The same assets, with the stage-5 automation condition attached where it belongs."""
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


def stage5_automation_sensor(assets: tuple[str, ...] = AUTOMATED_ASSETS) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        STAGE5_AUTOMATION_SENSOR,
        target=dg.AssetSelection.assets(*assets),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=15,
        description="Refreshes the catalog, folds, models, ensemble and comparison once new data has settled.",
    )
