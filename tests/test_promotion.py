"""Promotion: the bundle, the gate, and the promote job's assets against a real MLflow registry."""

import json
import math

import dagster as dg
import polars as pl
import pytest

from fvc_assets.promote.bundle import Candidate, Manifest, choose_candidate, write_bundle
from fvc_assets.promote.gate import verdict
from tests.serve_fixtures import THRESHOLDS, registry_of, train_folds


def manifest(score=0.8, folds=None, fingerprint="f1", digest="d1", model="logistic_regression", control=0.5):
    folds = folds or {str(k): score for k in range(5)}
    return Manifest(model=model, members=[], digest=digest, score=score, score_kind="nested", fold_roc_auc=folds,
                    picked_by="test", control={"mean_roc_auc": control, "std_roc_auc": 0.2},
                    thresholds=THRESHOLDS, folds_fingerprint=fingerprint, videos=10, code_version="test")


def test_the_gate_wants_the_control_beaten_by_the_margin_and_the_champion_matched_on_the_same_folds():
    assert verdict(manifest(0.8), None, 0.05).passed
    at_chance = verdict(manifest(0.53), None, 0.05)
    assert not at_chance.passed and "does not beat the shuffled-label control (0.500" in at_chance.reason
    assert not verdict(manifest(float("nan")), None, 0.05).passed
    champion = manifest(0.85, digest="d0")
    worse = verdict(manifest(0.8), champion, 0.05)
    assert not worse.passed and "below the champion" in worse.reason and "the same 5 folds" in worse.reason
    assert verdict(manifest(0.9), champion, 0.05).passed
    assert verdict(manifest(0.8, digest="d0"), champion, 0.05).reason.startswith("already the champion")
    # The champion was scored on other folds: its model retrained on the candidate's folds is the yardstick.
    moved = manifest(0.95, fingerprint="f0", digest="d0")
    assert verdict(manifest(0.8), moved, 0.05, champion_now={str(k): 0.7 for k in range(5)}).passed
    refused = verdict(manifest(0.8), moved, 0.05, champion_now={str(k): 0.9 for k in range(5)})
    assert not refused.passed and "retrained on them" in refused.reason
    assert not verdict(manifest(0.8), moved, 0.05).passed  # nothing to compare with: a person decides


def test_the_candidate_is_the_nested_pick_judged_by_its_nested_score():
    metrics = pl.DataFrame({"model": ["xgboost"] * 2 + ["naive_cnn"] * 2, "fold": [0, 1, 0, 1],
                            "metric": ["roc_auc"] * 4, "value": [0.7, 0.9, 0.95, 0.97]})
    best = {"best_model": "naive_cnn", "nested": {"naive_pick": "xgboost", "nested_roc_auc": 0.66,
                                                  "candidates": ["linear_svm", "xgboost"]}}
    picked = choose_candidate(best, metrics)
    assert (picked.model, picked.score, picked.score_kind) == ("xgboost", 0.66, "nested")
    assert picked.fold_roc_auc == {"0": 0.7, "1": 0.9}
    plain = choose_candidate({"best_model": "naive_cnn", "nested": {"nested_roc_auc": None}}, metrics)
    assert (plain.model, plain.score, plain.score_kind) == ("naive_cnn", pytest.approx(0.96), "mean over folds")
    with pytest.raises(ValueError, match="picked no model"):
        choose_candidate({"best_model": None}, metrics)


def test_a_bundle_holds_what_scoring_needs_and_its_digest_follows_the_files(tmp_path):
    root = tmp_path / "data"
    folds = train_folds(root)
    (root / "train" / "logistic_regression" / "fold_0" / "checkpoint.pt").write_bytes(b"training state")
    (root / "train" / "logistic_regression" / "fold_0" / "predictions.parquet").write_bytes(b"held out")
    candidate = Candidate("logistic_regression", 0.8, "nested", {"0": 0.8}, "test")

    def bundle(thresholds, out="deployed"):
        return write_bundle(root / out, root / "train", candidate, control={"mean_roc_auc": 0.5},
                            thresholds=thresholds, folds=folds, code="test", scaled_by=["letterbox"])

    path, first = bundle(THRESHOLDS)
    kept = sorted(p.name for p in (path / "models" / "logistic_regression" / "fold_0").iterdir())
    assert kept == ["model.json", "pipeline.skops"]
    assert Manifest.read(path) == first and first.videos == folds.height
    assert bundle(THRESHOLDS, "elsewhere")[1].digest == first.digest  # the same files: the same digest
    assert bundle({**THRESHOLDS, "fpr_5": 0.1})[1].digest != first.digest
    assert not list((root / "deployed").glob(".staging-*"))


def write_comparison(root, folds, fold_auc: float, control: float):
    """The comparison files deployed_model reads: metrics per fold, best_model.json, the catalog's methods."""
    for k in range(5):
        metrics = pl.DataFrame({"model": ["logistic_regression"], "fold": [k], "metric": ["roc_auc"],
                                "value": [fold_auc]})
        metrics.write_parquet(root / "train" / "logistic_regression" / f"fold_{k}" / "metrics.parquet")
    (root / "comparison").mkdir(exist_ok=True)
    (root / "comparison" / "best_model.json").write_text(json.dumps({
        "best_model": "logistic_regression",
        "nested": {"naive_pick": "logistic_regression", "nested_roc_auc": fold_auc, "candidates": ["logistic_regression"]},
        "shuffled_control": {"mean_roc_auc": control, "std_roc_auc": 0.1, "pooled_roc_auc": control},
        "thresholds": {"logistic_regression": THRESHOLDS}}))
    (root / "catalog").mkdir(exist_ok=True)
    folds.write_parquet(root / "catalog" / "folds.parquet")
    pl.DataFrame({"method": ["letterbox"]}).write_parquet(root / "catalog" / "video_catalog.parquet")


def test_the_promote_job_registers_every_candidate_and_moves_the_champion_only_past_the_gate(tmp_path):
    from fvc_assets.launch.plan import refused_by_blocking_check
    from fvc_assets.promote.assets import beats_control_and_champion, champion_model, deployed_model
    from fvc_resources.promotion import PromotionPolicy
    from fvc_resources.storage import StorageResource
    from fvc_resources.tracking import MlflowTracking

    root, home = tmp_path / "data", tmp_path / "home"
    folds = train_folds(root)
    registry = registry_of(home)
    resources = {"storage": StorageResource(data_dir=str(root)),
                 "tracking": MlflowTracking(tracking_uri=registry.uri, artifact_root=registry.artifact_root),
                 "promotion": PromotionPolicy()}
    defs = dg.Definitions(assets=[deployed_model, champion_model], asset_checks=[beats_control_and_champion],
                          resources=resources)
    instance = dg.DagsterInstance.ephemeral()

    def promote(fold_auc: float, control: float, thresholds_shift: float = 0.0):
        write_comparison(root, folds, fold_auc, control)
        if thresholds_shift:  # a retrained model: new files, a new bundle
            best = json.loads((root / "comparison" / "best_model.json").read_text())
            best["thresholds"]["logistic_regression"]["fpr_5"] += thresholds_shift
            (root / "comparison" / "best_model.json").write_text(json.dumps(best))
        return dg.materialize([deployed_model, champion_model, beats_control_and_champion], instance=instance,
                              resources=resources, raise_on_error=False)

    at_chance = promote(0.52, 0.5)
    assert not at_chance.success and registry.champion() is None
    [v1] = registry.versions()
    assert v1.tags["model"] == "logistic_regression" and v1.tags["promotion"].startswith("refused")
    assert "does not beat the shuffled-label control" in v1.tags["promotion"]
    assert refused_by_blocking_check(instance, defs, dg.AssetKey("deployed_model")) == "beats_control_and_champion"
    evaluation = at_chance.get_asset_check_evaluations()[0]
    assert not evaluation.passed and "margin 0.05" in evaluation.description

    good = promote(0.8, 0.5, thresholds_shift=0.01)
    assert good.success
    champion = registry.champion()
    assert champion is not None and champion.version != v1.version and champion.tags["promotion"].startswith(
        "champion since")
    assert refused_by_blocking_check(instance, defs, dg.AssetKey("deployed_model")) == ""
    manifest = Manifest.read(next(p for p in (root / "deployed").iterdir() if p.name == champion.digest))
    assert manifest.score == 0.8 and manifest.scaled_by == ["letterbox"] and not math.isnan(manifest.score)

    same = promote(0.8, 0.5, thresholds_shift=0.01)  # nothing changed: the same version, still champion
    assert same.success and registry.champion().version == champion.version and len(registry.versions()) == 2

    worse = promote(0.7, 0.5, thresholds_shift=0.02)  # beats the control, not the champion on the same folds
    assert not worse.success and registry.champion().version == champion.version
    assert "below the champion" in registry.versions()[0].tags["promotion"]
