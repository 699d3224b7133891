"""Stage 5 — ``fold_results``: one model trained and evaluated on one fold, per model x fold partition."""

import hashlib
import math

import polars as pl

import dagster as dg
from fvc_assets.partitions import FOLDS, MODELS, model_fold_partitions
from fvc_assets.sole_writer import sole_writer
from fvc_assets.train.assets import folds, video_catalog
from fvc_assets.train.fold_training import (
    METRICS, LeakingSplit, MissingBaseResults, read_predictions, stale_folds, train_fold,
)
from fvc_assets.train.metrics import METRIC_NAMES
from fvc_assets.train.models.registry import base_models, spec
from fvc_assets.upstream import require_upstream
from fvc_resources.duckdb_views import refresh_views
from fvc_resources.storage import StorageResource
from fvc_resources.tracking import MlflowTracking
from fvc_resources.training import TrainingResource

FOLD_METRICS_FINITE = "fold_metrics_finite"
ALL_MODELS_AND_FOLDS = "all_models_and_folds_present"


def data_version(*paths) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def fold_workdir(storage: StorageResource, context: dg.AssetExecutionContext):
    keys = context.partition_key.keys_by_dimension
    return storage.fold_dir(keys["model"], int(keys["fold"]))


@dg.asset(
    partitions_def=model_fold_partitions,
    deps=[video_catalog, folds],
    group_name="train",
    code_version="1",
    kinds={"python", "mlflow"},
    pool="gpu",  # deep models want the accelerator; one training step at a time per pool slot
    tags={"fvc/stage": "5"},
    op_tags={"slurm/gres": "gpu:1"},
    check_specs=[
        dg.AssetCheckSpec(FOLD_METRICS_FINITE, partitions_def=model_fold_partitions, asset="fold_results", blocking=True,
                          description="Every held-out video scored; all metrics finite."),
    ],
    description=(
        "Trains one model on four folds (originals + augmentations of the training videos) and scores the "
        "held-out fold's original clips (one score per video; its augmented clips are reported apart). "
        "Saves the model, predictions and metrics; records an MLflow run."
    ),
)
@sole_writer(lambda storage, c: [fold_workdir(storage, c)])
def fold_results(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    training: TrainingResource,
    tracking: MlflowTracking,
) -> dg.MaterializeResult:
    keys = context.partition_key.keys_by_dimension
    model, fold = keys["model"], int(keys["fold"])
    workdir = fold_workdir(storage, context)
    catalog_path = require_upstream(storage.catalog_path, "video_catalog", "all videos")
    folds_path = require_upstream(storage.folds_path, "folds", "all videos")
    settings = training.settings()
    try:
        outcome = train_fold(
            model, fold, pl.read_parquet(catalog_path), pl.read_parquet(folds_path), settings,
            root=storage.root, workdir=workdir, frames_cache=storage.frames_cache_dir,
            train_dir=storage.train_dir, ensemble_members=list(base_models(MODELS)), n_folds=len(FOLDS),
            log=context.log.info,
        )
    except (MissingBaseResults, LeakingSplit) as exc:
        raise dg.Failure(description=str(exc)) from exc
    version = data_version(catalog_path, folds_path)
    model_files = sorted(p for p in workdir.iterdir() if p.name.startswith(("model.", "ensemble.")))
    run_id = tracking.record_fold(
        model=model, fold=fold,
        tags={"dagster_run_id": context.run.run_id, "data_version": version, "partition": str(context.partition_key)},
        params={**settings.as_params(), "inputs": spec(model).inputs},
        metrics={**outcome.metrics, **{f"augmented_{k}": v for k, v in outcome.augmented_metrics.items()},
                 "train_seconds": outcome.seconds},
        artifacts=model_files,
    )
    refresh_views(storage.root, storage.duckdb_path)
    held_out = outcome.predictions.filter(pl.col("augmentation") == "original")
    core = {k: outcome.metrics.get(k, math.nan) for k in METRIC_NAMES}
    bad = {k: v for k, v in core.items() if not math.isfinite(v)}
    return dg.MaterializeResult(
        metadata={
            **{k: dg.MetadataValue.float(v) for k, v in core.items()},
            "confusion_matrix": dg.MetadataValue.json(outcome.confusion),
            "held_out_videos": held_out.height,
            "train_seconds": round(outcome.seconds, 2),
            "training": dg.MetadataValue.json({k: v for k, v in outcome.info.items() if not k.startswith("loss_")}),
            "mlflow_run_id": run_id or "disabled",
            "data_version": version,
            "folder": dg.MetadataValue.path(str(workdir)),
        },
        data_version=dg.DataVersion(version + ":" + settings.fingerprint()),
        check_results=[
            dg.AssetCheckResult(
                check_name=FOLD_METRICS_FINITE,
                passed=not bad and 0 < held_out.height == outcome.info["expected_videos"],
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"held_out_videos": held_out.height, "videos_in_fold": outcome.info["expected_videos"],
                          "not_finite": dg.MetadataValue.json(bad)},
            )
        ],
    )


def missing_fold_results(storage: StorageResource) -> dict[str, str]:
    """'model/fold' -> why, for every configured model x fold without current, finite results on disk."""
    missing = {}
    folds_table = pl.read_parquet(storage.folds_path) if storage.folds_path.exists() else None
    for model in MODELS:
        if folds_table is not None:
            predictions = read_predictions(storage.train_dir, model)
            for fold, why in stale_folds(predictions, folds_table, len(FOLDS)).items():
                if why != "missing":
                    missing[f"{model}/{fold}"] = why
        for fold in FOLDS:
            path = storage.fold_dir(model, int(fold)) / METRICS
            if not path.exists():
                missing[f"{model}/{fold}"] = "not materialised"
                continue
            values = dict(pl.read_parquet(path).select("metric", "value").iter_rows())
            bad = [m for m in METRIC_NAMES if not math.isfinite(values.get(m, math.nan))]
            if bad:
                missing[f"{model}/{fold}"] = "not finite: " + ", ".join(bad)
    return missing


@dg.asset_check(
    asset=fold_results,
    name=ALL_MODELS_AND_FOLDS,
    blocking=True,
    description="Every configured model x fold has results on disk, with finite metrics.",
)
def all_models_and_folds_present(storage: StorageResource) -> dg.AssetCheckResult:
    missing = missing_fold_results(storage)
    return dg.AssetCheckResult(
        passed=not missing,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"expected": len(MODELS) * len(FOLDS), "missing": dg.MetadataValue.json(missing)},
    )
