"""Stage 6: the comparison's pick as a registered bundle (``deployed_model``), a blocking gate, and the
champion alias (``champion_model``) that ``fvc serve`` answers with."""


import json
from pathlib import Path

import polars as pl

import dagster as dg
from fvc_assets.launch.environment import PROJECT_ROOT
from fvc_assets.promote.bundle import Manifest, choose_candidate, code_version, data_fingerprint, write_bundle
from fvc_assets.promote.gate import verdict
from fvc_assets.train.comparison_assets import BEST, model_comparison, read_all
from fvc_assets.train.fold_training import METRICS
from fvc_resources.atomic import write_json_atomic
from fvc_resources.promotion import PromotionPolicy
from fvc_resources.storage import StorageResource
from fvc_resources.tracking import MlflowTracking

CANDIDATE = "candidate.json"  # under deployed/: the latest candidate's registered version and bundle
MANIFEST_TAG = "manifest"


def deployed_dir(storage: StorageResource) -> Path:
    return storage.root / "deployed"


def read_candidate(storage: StorageResource) -> dict:
    return json.loads((deployed_dir(storage) / CANDIDATE).read_text())


@dg.asset(
    deps=[model_comparison],
    group_name="promote",
    code_version="1",
    kinds={"mlflow"},
    description=(
        "The comparison's pick (the nested pick when there is one) packaged for scoring: its fold models (and an "
        "ensemble's members), operating-point thresholds, the folds' fingerprint and the code version, in "
        "deployed/<digest>/ and as a version of the MLflow registered model. Its gate decides whether it becomes "
        "the champion."
    ),
)
def deployed_model(context: dg.AssetExecutionContext, storage: StorageResource, tracking: MlflowTracking,
                   promotion: PromotionPolicy) -> dg.MaterializeResult:
    best = json.loads((storage.comparison_dir / BEST).read_text())
    candidate = choose_candidate(best, read_all(storage, METRICS))
    thresholds = (best.get("thresholds") or {}).get(candidate.model, {})
    bundle, manifest = write_bundle(deployed_dir(storage), storage.train_dir, candidate,
                                    control=best.get("shuffled_control") or {}, thresholds=thresholds,
                                    folds=pl.read_parquet(storage.folds_path), code=code_version(PROJECT_ROOT),
                                    scaled_by=pl.read_parquet(storage.catalog_path, columns=["method"])["method"]
                                    .unique().to_list(),
                                    data=data_fingerprint(storage.catalog_path, storage.folds_path))
    registry = promotion.registry(tracking)
    version = registry.register(
        bundle, manifest.digest,
        tags={"model": manifest.model, "score": f"{manifest.score:.4f}", "score_kind": manifest.score_kind,
              MANIFEST_TAG: (bundle / "bundle.json").read_text()},
        description=f"{manifest.model}: {manifest.score_kind} ROC-AUC {manifest.score:.3f}, picked by "
                    f"{manifest.picked_by}; code {manifest.code_version}")
    write_json_atomic(deployed_dir(storage) / CANDIDATE,
                      {"version": version.version, "digest": manifest.digest, "bundle": str(bundle)})
    champion = registry.champion()
    context.log.info(f"candidate {manifest.model} bundle {manifest.digest} is version {version.version} of "
                     f"{promotion.registered_model}")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(manifest.digest),
        metadata={
            "model": manifest.model,
            "registered_version": dg.MetadataValue.text(f"{promotion.registered_model} v{version.version}"),
            "bundle_digest": manifest.digest,
            "score": dg.MetadataValue.float(manifest.score),
            "score_kind": manifest.score_kind,
            "picked_by": manifest.picked_by,
            "shuffled_control_roc_auc": dg.MetadataValue.float(float(manifest.control.get("mean_roc_auc", "nan"))),
            "fold_roc_auc": dg.MetadataValue.json(manifest.fold_roc_auc),
            "thresholds": dg.MetadataValue.json(manifest.thresholds),
            "folds_fingerprint": manifest.folds_fingerprint,
            "data_fingerprint": manifest.data_fingerprint,
            "code_version": manifest.code_version,
            "champion_before": (f"v{champion.version} ({champion.tags.get('model', '?')})" if champion else "none"),
            "bundle": dg.MetadataValue.path(str(bundle)),
        },
    )


def champion_manifest(tags: dict[str, str]) -> Manifest | None:
    return Manifest(**json.loads(tags[MANIFEST_TAG])) if MANIFEST_TAG in tags else None


@dg.asset_check(asset=deployed_model, blocking=True,
                description="The candidate beats the shuffled-label control by the policy's margin and scores no "
                            "lower than the champion on the same folds; else it is refused and the champion stays.")
def beats_control_and_champion(storage: StorageResource, tracking: MlflowTracking,
                               promotion: PromotionPolicy) -> dg.AssetCheckResult:
    from datetime import datetime, timezone

    picked = read_candidate(storage)
    candidate = Manifest.read(Path(picked["bundle"]))
    registry = promotion.registry(tracking)
    champion = registry.champion()
    current = champion_manifest(champion.tags) if champion else None
    champion_now = None
    if current is not None and current.folds_fingerprint != candidate.folds_fingerprint:
        metrics = read_all(storage, METRICS)
        rows = metrics.filter((pl.col("model") == current.model) & (pl.col("metric") == "roc_auc"))
        champion_now = {str(f): float(v) for f, v in rows.select("fold", "value").iter_rows()}
    result = verdict(candidate, current, promotion.margin_over_control, champion_now)
    if not result.passed:
        registry.note(picked["version"], f"refused {datetime.now(timezone.utc).isoformat(timespec='seconds')}: "
                                         f"{result.reason}")
    return dg.AssetCheckResult(
        passed=result.passed, severity=dg.AssetCheckSeverity.ERROR, description=result.reason,
        metadata={"candidate": f"v{picked['version']} {candidate.model} ({candidate.score_kind} "
                               f"{candidate.score:.3f})",
                  "champion": f"v{champion.version} {current.model if current else '?'}" if champion else "none",
                  "margin_over_control": promotion.margin_over_control,
                  "control": dg.MetadataValue.json(candidate.control)})


@dg.asset(
    deps=[deployed_model],
    group_name="promote",
    code_version="1",
    kinds={"mlflow"},
    description="The registered model's champion alias, moved to the candidate that passed the gate (the run "
                "stops before this step when the gate refuses). Roll back with `fvc model rollback`.",
)
def champion_model(context: dg.AssetExecutionContext, storage: StorageResource, tracking: MlflowTracking,
                   promotion: PromotionPolicy) -> dg.MaterializeResult:
    picked = read_candidate(storage)
    registry = promotion.registry(tracking)
    before = registry.champion()
    if before is None or before.version != picked["version"]:
        registry.set_champion(picked["version"], f"dagster run {context.run.run_id[:8]}", "passed the promotion gate")
    now = registry.version(picked["version"])
    return dg.MaterializeResult(
        data_version=dg.DataVersion(now.digest),
        metadata={"champion": dg.MetadataValue.text(f"{promotion.registered_model}@{promotion.alias} = "
                                                    f"v{now.version} ({now.tags.get('model', '?')})"),
                  "replaced": f"v{before.version}" if before and before.version != now.version else "nothing",
                  "rollback": dg.MetadataValue.text("fvc model rollback")})
