"""Stage 5 refreshes by the automation conditions on its assets, in the asset graph's order, once per new data.

Evaluated with Dagster's own evaluator on an instance where materialisations are reported with the data
versions the assets would write (no training runs here: the order and the once-only rule are the subject).
"""

import dagster as dg

from fvc_assets.definitions import defs
from fvc_assets.partitions import BASE_MODELS, FOLDS

STAGE5 = dg.AssetSelection.assets("video_catalog", "folds", "fold_results", "ensemble_results", "model_comparison",
                                  "cross_manipulation", "deployed_model", "champion_model")


def report(instance, asset: str, version: str, partitions=(None,)) -> None:
    for partition in partitions:
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=asset, partition=partition, tags={"dagster/data_version": version}))


def check_passed(instance, asset: str, check: str, passed: bool = True) -> None:
    instance.report_runless_asset_event(dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(asset), check_name=check, passed=passed, severity=dg.AssetCheckSeverity.ERROR))


def checks_passed(instance, asset: str, partitions) -> None:
    for partition in partitions:
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(asset), check_name="fold_metrics_finite", passed=True, partition=partition,
            severity=dg.AssetCheckSeverity.ERROR))


def requested(result) -> dict[str, int]:
    out = {}
    for r in result.results:
        if r.true_subset.size:
            out[r.key.to_user_string()] = r.true_subset.size
    return out


def evaluate(instance, cursor=None):
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=STAGE5, cursor=cursor)
    return result, requested(result)


def test_stage5_follows_the_graph_base_models_then_ensemble_then_comparison():
    base = [dg.MultiPartitionKey({"model": m, "fold": f}) for m in BASE_MODELS for f in FOLDS]
    with dg.instance_for_test() as instance:
        result, asked = evaluate(instance)
        assert asked == {}
        # A new catalog and folds (and their checks passed): every base model x fold, nothing downstream yet.
        report(instance, "video_catalog", "c1")
        check_passed(instance, "video_catalog", "catalog_sane")
        report(instance, "folds", "f1")
        check_passed(instance, "folds", "no_leakage")
        result, asked = evaluate(instance, result.cursor)
        assert asked == {"fold_results": len(base)}
        # Base models done: the ensemble of every fold and the leave-one-family-out evaluation; the
        # comparison still waits for the ensemble.
        report(instance, "fold_results", "b1", base)
        checks_passed(instance, "fold_results", base)
        result, asked = evaluate(instance, result.cursor)
        assert asked == {"ensemble_results": len(FOLDS), "cross_manipulation": 1}
        report(instance, "cross_manipulation", "x1")
        report(instance, "ensemble_results", "e1", FOLDS)
        checks_passed(instance, "ensemble_results", FOLDS)
        result, asked = evaluate(instance, result.cursor)
        assert asked == {"model_comparison": 1}
        result, asked = new_candidate(instance, result.cursor, "1", gate_passed=True)
        assert asked == {"champion_model": 1}
        report(instance, "champion_model", "d1")
        result, asked = evaluate(instance, result.cursor)
        assert asked == {}, "each new data version is handled once"
        # The same catalog and folds again (same data versions): nothing retrains.
        report(instance, "video_catalog", "c1")
        report(instance, "folds", "f1")
        result, asked = evaluate(instance, result.cursor)
        assert asked == {}


def test_no_training_on_folds_that_failed_the_leakage_check():
    with dg.instance_for_test() as instance:
        result, _ = evaluate(instance)
        report(instance, "video_catalog", "c1")
        check_passed(instance, "video_catalog", "catalog_sane")
        report(instance, "folds", "f1")
        check_passed(instance, "folds", "no_leakage", passed=False)
        result, asked = evaluate(instance, result.cursor)
        assert "fold_results" not in asked and "ensemble_results" not in asked


def new_candidate(instance, cursor, version: str, gate_passed: bool):
    """A new comparison: it asks for a candidate (deployed_model); then what the candidate's gate lets through."""
    report(instance, "model_comparison", f"m{version}")
    result, asked = evaluate(instance, cursor)
    assert asked == {"deployed_model": 1}
    report(instance, "deployed_model", f"d{version}")
    check_passed(instance, "deployed_model", "beats_control_and_champion", passed=gate_passed)
    return evaluate(instance, result.cursor)


def test_a_candidate_refused_by_its_gate_never_becomes_the_champion():
    with dg.instance_for_test() as instance:
        result, _ = evaluate(instance)
        result, asked = new_candidate(instance, result.cursor, "1", gate_passed=False)
        assert asked == {}
        # A new comparison brings a new candidate, and this one passes.
        result, asked = new_candidate(instance, result.cursor, "2", gate_passed=True)
        assert asked == {"champion_model": 1}
