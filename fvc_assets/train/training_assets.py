"""Stage 5 — ``fold_results`` (a base model trained and evaluated on one fold, per model x fold) and
``ensemble_results`` (the stacker over their scores, per fold)."""

import contextlib
import math
from typing import Any

import polars as pl

import dagster as dg
from fvc_assets.partitions import BASE_MODELS, ENSEMBLE, FOLDS, MODELS, fold_partitions, model_fold_partitions
from fvc_assets.steps.sole_writer import sole_writer
from fvc_assets.steps.step_cost import reports_cost
from fvc_assets.train.catalog_assets import video_catalog
from fvc_assets.train.folds_assets import folds
from fvc_assets.train.collapse import collapse_reasons
from fvc_assets.train.fold_training import (
    INNER_PREDICTIONS, METRICS, PREDICTIONS, LeakingSplit, MissingBaseResults, read_predictions, stale_folds,
    train_fold,
)
from fvc_assets.train.metrics import METRIC_NAMES
from fvc_assets.train.models.registry import spec
from fvc_assets.steps.upstream import files_version, require_upstream
from fvc_assets.steps.table_metadata import table_metadata
from fvc_core.train_settings import PROFILE_NOTES
from fvc_resources.duckdb_views import refresh_views
from fvc_resources.gpu_pool import holding_gpu_pool
from fvc_resources.storage import StorageResource
from fvc_resources.tracking import MlflowTracking, end_failed
from fvc_resources.training import TrainingResource

FOLD_METRICS_FINITE = "fold_metrics_finite"
NOT_COLLAPSED = "model_not_collapsed"
COLLAPSE_DESCRIPTION = ("WARN when the model collapsed: all logits (or held-out scores) equal, no gradient, or a "
                        "training loss below 1e-4 while the held-out ROC-AUC is near 0.5. Names the model and fold.")
ALL_MODELS_AND_FOLDS = "all_models_and_folds_present"


def partition_model_fold(context: dg.AssetExecutionContext) -> tuple[str, int]:
    """(model, fold) of a fold_results (model x fold) or ensemble_results (fold) partition."""
    if isinstance(context.partition_key, dg.MultiPartitionKey):
        keys = context.partition_key.keys_by_dimension
        return keys["model"], int(keys["fold"])
    return ENSEMBLE, int(context.partition_key)


def uses_gpu(model: str, settings) -> bool:
    """Does training this model put work on a GPU here (a deep model, and CUDA chosen or available)?"""
    if spec(model).inputs != "frames":
        return False
    from fvc_assets.train.models.deep import resolve_device

    return resolve_device(settings.device) == "cuda"


def train_and_record(context: dg.AssetExecutionContext, storage: StorageResource, training: TrainingResource,
                     tracking: MlflowTracking, mlflow=None) -> dg.MaterializeResult:
    """Train one model on one fold, record it in MLflow, and describe it for the UI.

    ``mlflow``: dagster-mlflow's resource when MLflow is a tracking server, else None (sqlite path)."""
    try:
        return _train_and_record(context, storage, training, tracking, mlflow)
    except BaseException:
        end_failed(mlflow)
        raise


def _train_and_record(context: dg.AssetExecutionContext, storage: StorageResource, training: TrainingResource,
                      tracking: MlflowTracking, mlflow) -> dg.MaterializeResult:
    model, fold = partition_model_fold(context)
    workdir = storage.fold_dir(model, fold)
    catalog_path = require_upstream(storage.catalog_path, "video_catalog", "all videos")
    folds_path = require_upstream(storage.folds_path, "folds", "all videos")
    settings = training.settings()
    gpu = uses_gpu(model, settings)
    try:
        with holding_gpu_pool(context.instance, context.run.run_id, context.op_handle.name, context.log.info) \
                if gpu else contextlib.nullcontext():
            outcome = train_fold(
                model, fold, pl.read_parquet(catalog_path), pl.read_parquet(folds_path), settings,
                root=storage.root, workdir=workdir, frames_cache=storage.frames_cache_dir,
                train_dir=storage.train_dir, ensemble_members=list(BASE_MODELS), n_folds=len(FOLDS),
                log=context.log.info,
            )
    except (MissingBaseResults, LeakingSplit) as exc:
        raise dg.Failure(description=str(exc)) from exc
    version = files_version(catalog_path, folds_path)
    model_files = sorted(p for p in workdir.iterdir()
                         if p.name.startswith(("model.", "ensemble.", "pipeline.", "preprocessing.", "xgboost.")))
    run_id = tracking.record_fold(
        model=model, fold=fold,
        tags={"dagster_run_id": context.run.run_id, "data_version": version, "partition": str(context.partition_key)},
        params={**settings.as_params(), "inputs": spec(model).inputs},
        metrics={**outcome.metrics, **{f"augmented_{k}": v for k, v in outcome.augmented_metrics.items()},
                 "train_seconds": outcome.seconds},
        artifacts=model_files,
        history=outcome.history,
        server_run=mlflow,
    )
    refresh_views(storage.root, storage.duckdb_path)
    held_out = outcome.predictions.filter(pl.col("augmentation") == "original")
    core = {k: outcome.metrics.get(k, math.nan) for k in METRIC_NAMES}
    bad = {k: v for k, v in core.items() if not math.isfinite(v)}
    collapsed = collapse_reasons(outcome.info, held_out["score"].to_numpy(), core["roc_auc"])
    return dg.MaterializeResult(
        metadata={
            **table_metadata(outcome.predictions),  # the predictions.parquet it wrote
            **{k: dg.MetadataValue.float(v) for k, v in core.items()},
            "confusion_matrix": dg.MetadataValue.json(outcome.confusion),
            "held_out_videos": held_out.height,
            "train_seconds": round(outcome.seconds, 2),
            "held_gpu_pool": gpu,
            "training": dg.MetadataValue.json({k: v for k, v in outcome.info.items() if not k.startswith("loss_")}),
            "training_curves": len(outcome.history),
            "training_profile": PROFILE_NOTES.get(training.profile, training.profile) + (
                "" if spec(model).inputs == "frames" else " (frame models; this model's settings are its own)"),
            "mlflow_run_id": run_id or "disabled",
            "data_version": version,
            "folder": dg.MetadataValue.path(str(workdir)),
        },
        # The ensemble's version covers the base predictions it read: new base scores make it stale.
        data_version=dg.DataVersion(version + ":" + settings.fingerprint()
                                    + (":" + predictions_version(storage, fold) if model == ENSEMBLE else "")),
        check_results=[
            dg.AssetCheckResult(
                check_name=FOLD_METRICS_FINITE,
                passed=not bad and 0 < held_out.height == outcome.info["expected_videos"],
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"held_out_videos": held_out.height, "videos_in_fold": outcome.info["expected_videos"],
                          "not_finite": dg.MetadataValue.json(bad)},
            ),
            dg.AssetCheckResult(
                check_name=NOT_COLLAPSED,
                passed=not collapsed,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"{model} fold {fold}: " + ("; ".join(collapsed) if collapsed else "not collapsed"),
                metadata={"model": model, "fold": fold, "reasons": dg.MetadataValue.json(collapsed),
                          "distinct_held_out_scores": int(len(set(held_out["score"].to_list())))},
            ),
        ],
    )


def predictions_version(storage: StorageResource, fold: int) -> str:
    """Hash of the base models' files the ensemble of ``fold`` reads: their scores of fold ``fold`` and
    their inner out-of-fold scores within the other folds (what its combiners are fitted on)."""
    paths = [storage.fold_dir(m, fold) / name for m in BASE_MODELS for name in (PREDICTIONS, INNER_PREDICTIONS)]
    return files_version(*[p for p in paths if p.exists()])


@dg.asset(
    partitions_def=model_fold_partitions,
    deps=[video_catalog, folds],
    group_name="train",
    code_version="1",
    kinds={"python", "mlflow"},
    tags={"fvc/stage": "5"},
    check_specs=[
        dg.AssetCheckSpec(FOLD_METRICS_FINITE, partitions_def=model_fold_partitions, asset="fold_results",
                          blocking=True, description="Every held-out video scored; all metrics finite."),
        dg.AssetCheckSpec(NOT_COLLAPSED, partitions_def=model_fold_partitions, asset="fold_results",
                          description=COLLAPSE_DESCRIPTION),
    ],
    description=(
        "Trains one base model on four folds (originals + augmentations of the training videos) and scores the "
        "held-out fold's original clips (one score per video; its augmented clips are reported apart). With "
        "`inner_folds` (default) it also trains on each inner split of those four folds and keeps the inner "
        "out-of-fold scores, for the ensemble and for choosing the best model without this fold. "
        "Saves the model, predictions and metrics; records an MLflow run. Deep models on CUDA hold the `gpu` "
        "pool while they train; everything else runs side by side."
    ),
)
@sole_writer(lambda storage, c: [storage.fold_dir(*partition_model_fold(c))])
@reports_cost
def fold_results(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    training: TrainingResource,
    tracking: MlflowTracking,
    mlflow: dg.ResourceParam[Any],
) -> dg.MaterializeResult:
    return train_and_record(context, storage, training, tracking, mlflow)


@dg.asset(
    partitions_def=fold_partitions,
    deps=[video_catalog, folds, dg.AssetDep(fold_results, partition_mapping=dg.AllPartitionMapping())],
    group_name="train",
    code_version="1",
    kinds={"python", "mlflow"},
    tags={"fvc/stage": "5"},
    check_specs=[
        dg.AssetCheckSpec(FOLD_METRICS_FINITE, partitions_def=fold_partitions, asset="ensemble_results",
                          blocking=True, description="Every held-out video scored; all metrics finite."),
        dg.AssetCheckSpec(NOT_COLLAPSED, partitions_def=fold_partitions, asset="ensemble_results",
                          description=COLLAPSE_DESCRIPTION),
    ],
    description=(
        "The ensemble for one fold: a logistic regression over the base models' scores (and beside it their "
        "weighted average, `average_predictions.parquet`), both fitted on the base models' inner out-of-fold "
        "scores within the other folds, then applied to their scores of this fold: this fold's labels fit "
        "nothing it learns from. Runs after fold_results."
    ),
)
@sole_writer(lambda storage, c: [storage.fold_dir(*partition_model_fold(c))])
@reports_cost
def ensemble_results(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    training: TrainingResource,
    tracking: MlflowTracking,
    mlflow: dg.ResourceParam[Any],
) -> dg.MaterializeResult:
    return train_and_record(context, storage, training, tracking, mlflow)


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
