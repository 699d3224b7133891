"""Refresh when new videos land, declared on the stage-5 assets: one automation condition, written once.

The inbox sensor runs stages 1-4 per video. Every stage-5 asset (``video_catalog``,
``folds``, ``fold_results``, ``ensemble_results``, ``model_comparison``, ``cross_manipulation``, and the
promotion's ``deployed_model`` and ``champion_model``) carries
the same condition, evaluated by ``stage5_automation`` (a sensor, on by default):

* some asset it depends on has a new data version (per-video tables, the catalog,
  the folds, base-model scores; each is a hash of the content, so re-running an
  unchanged video or refreshing an unchanged catalog retrains nothing), and
* nothing it depends on is still queued, running, or being requested in this tick
  (so ten videos that land together give one catalog refresh, and the ensemble
  waits for every base model), and
* from ``folds`` on: the blocking checks of what it reads passed (no training on a
  split that failed ``no_leakage``, no champion from a candidate its gate refused).

Each new data version is handled once: a failed partition is not retried in a loop.
The order (catalog, folds, base models, ensemble, comparison) is the asset graph's.
Nothing runs on a schedule: only sensors, people and ``fvc run`` start runs.
"""

import dagster as dg
from fvc_assets.partitions import ENSEMBLE, MODELS

STAGE5_AUTOMATION_SENSOR = "stage5_automation"
AUTOMATED_ASSETS = ("video_catalog", "folds", "fold_results", "ensemble_results", "model_comparison",
                    "cross_manipulation", "deployed_model", "champion_model")

AC = dg.AutomationCondition


def after_new_data_settles(trigger: str | None = None) -> dg.AutomationCondition:
    """New data came from upstream (``trigger``, or any dependency) since this asset last ran, and none of
    its dependencies is queued or running.

    Unlike ``eager()`` it does not wait for missing parents: a video whose run failed
    would otherwise hold the catalog back forever (the catalog leaves such videos
    out and names them in ``catalog_complete``). One dependency is the trigger where a
    parent is itself refreshed by automation: Dagster cannot see, within a tick, that a
    parent of other partitions is being requested, so a child that listened to every
    parent could start beside it.
    """
    changed = AC.any_deps_match(AC.data_version_changed() | AC.will_be_requested())
    if trigger:
        changed = changed.allow(dg.AssetSelection.assets(trigger))
    new_data = changed.with_label(f"new_data_from_{trigger or 'any_dep'}")
    upstream_busy = AC.any_deps_match(AC.in_progress() | AC.will_be_requested()).with_label("any_deps_in_flight")
    return (new_data.since_last_handled() & ~upstream_busy & ~AC.in_progress()).with_label("after_new_data_settles")


# The blocking checks that gate what follows them: the catalog's sanity, the folds' leakage check and the
# promotion gate (a refused candidate never becomes the champion).
# (Per-partition checks of fold_results are not used here: the ensemble re-audits its inputs and refuses
# missing or stale base scores, and the comparison runs `all_models_and_folds_present` itself.)
GATING_ASSETS = ("video_catalog", "folds", "deployed_model")


def after_new_data_settles_and_checks_pass(trigger: str) -> dg.AutomationCondition:
    blocking_checks_passed = AC.all_checks_match(AC.check_passed() | AC.will_be_requested(), blocking_only=True)
    checks_passed = AC.all_deps_match(blocking_checks_passed).allow(
        dg.AssetSelection.assets(*GATING_ASSETS)).with_label("gating_checks_passed")
    return (after_new_data_settles(trigger) & checks_passed).with_label("after_new_data_settles_and_checks_pass")


# What wakes each stage-5 asset: its parent in the chain (folds carry the catalog's version in theirs,
# and the ensemble the base models' scores in its own, so a change anywhere upstream reaches each link).
TRIGGERS = {
    "folds": "video_catalog",
    "fold_results": "folds",
    "ensemble_results": "fold_results",
    "model_comparison": "ensemble_results" if ENSEMBLE in MODELS else "fold_results",
    "cross_manipulation": "fold_results",
    "deployed_model": "model_comparison",
    "champion_model": "deployed_model",
}
CONDITIONS = {
    "video_catalog": after_new_data_settles,
    **{name: (lambda trigger=trigger: after_new_data_settles_and_checks_pass(trigger))
       for name, trigger in TRIGGERS.items()},
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
