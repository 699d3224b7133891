"""``model_comparison``: every model's folds side by side, plots, slices, the best model."""

import polars as pl

import dagster as dg
from fvc_assets.ingest.preview import markdown_image
from fvc_assets.partitions import BASE_MODELS, FOLDS, MODELS
from fvc_assets.steps.sole_writer import sole_writer
from fvc_assets.train.comparison import (
    NESTED, against_control, best_model, comparison_table, manipulation_scores, manipulation_table, markdown,
    naive_and_nested, nested_metrics, nested_predictions, nested_selection, per_fold_metrics, plot_curves, pooled_metrics, shuffled_label_control, slice_scores,
    summarize, weakest_slices,
)
from fvc_assets.train.operating_points import (
    deployment_thresholds, fold_operating_points, nested_operating_points, operating_table, summarize_points,
)
from fvc_assets.train.training_assets import ensemble_results, fold_results, missing_fold_results
from fvc_assets.train.fold_training import AVERAGE_PREDICTIONS, INNER_PREDICTIONS, METRICS, PREDICTIONS
from fvc_assets.steps.table_metadata import table_metadata
from fvc_resources.atomic import write_json_atomic, write_parquet_atomic
from fvc_resources.duckdb_views import refresh_views
from fvc_resources.storage import StorageResource

SUMMARY = "summary.parquet"
OPERATING_POINTS = "operating_points.parquet"  # per model x fold, thresholds fixed on inner folds
MANIPULATIONS = "manipulations.parquet"  # each family's fakes against every real video, per model
BEST = "best_model.json"


def read_all(storage: StorageResource, name: str) -> pl.DataFrame | None:
    files = [storage.train_dir / m / f"fold_{k}" / name for m in MODELS for k in FOLDS]
    frames = [pl.read_parquet(f) for f in files if f.exists()]
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


@dg.asset(
    deps=[fold_results, ensemble_results],
    group_name="train",
    code_version="1",
    kinds={"parquet", "matplotlib"},
    description=(
        "Mean ± std over folds of every metric per model, pooled out-of-fold ROC-AUC, ROC / PR / calibration "
        "plots, scores per slice (resolution, codec, duration, platform) and per manipulation family, operating "
        "points (TPR at 1 % and 5 % FPR, precision in the top 10 %; thresholds fixed on inner folds), a "
        "label-shuffled control, and the "
        "best model by mean ROC-AUC (used by `fvc predict`). Beside each model's own score: the ensemble's weighted "
        "average, and the nested score of picking the best model by inner CV (each outer fold judged by a model "
        "chosen without it), which the naive best mean over the same folds overstates."
    ),
)
@sole_writer(lambda storage, c: [storage.comparison_dir])
def model_comparison(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    missing = missing_fold_results(storage)
    if missing:
        raise dg.Failure(description="fold_results incomplete: " + ", ".join(f"{k} ({v})" for k, v in missing.items()),
                         metadata={"missing": dg.MetadataValue.json(missing)})
    metrics, predictions = read_all(storage, METRICS), read_all(storage, PREDICTIONS)
    catalog, folds = pl.read_parquet(storage.catalog_path), pl.read_parquet(storage.folds_path)
    order = list(MODELS)
    average = read_all(storage, AVERAGE_PREDICTIONS)  # the ensemble's weighted average, beside its stacker
    if average is not None:
        predictions = pl.concat([predictions, average], how="diagonal_relaxed")
        metrics = pl.concat([metrics, per_fold_metrics(average)], how="diagonal_relaxed")
        order.insert(order.index("ensemble") + 1 if "ensemble" in order else len(order), "ensemble_average")
    best = best_model(summarize(metrics.filter(pl.col("model").is_in(list(MODELS)))))  # what fvc predict uses
    inner = read_all(storage, INNER_PREDICTIONS)
    selection = nested_selection(inner, metrics) if inner is not None else None
    if selection is not None and selection.height:
        candidates = sorted(set(inner["model"].to_list()))
        # The naive pick among the same candidates, judged on the folds it was picked on, beside the nested one.
        honest = naive_and_nested(summarize(metrics.filter(pl.col("model").is_in(candidates))), selection)
        # Base models trained without inner folds (inner_folds off, or by an earlier version) are no candidates.
        honest.update(candidates=candidates, without_inner_scores=sorted(set(BASE_MODELS) - set(candidates)))
        metrics = pl.concat([metrics, nested_metrics(selection)], how="diagonal_relaxed")
        predictions = pl.concat([predictions, nested_predictions(selection, predictions)], how="diagonal_relaxed")
        order.append(NESTED)
    else:
        honest = {"nested_roc_auc": None, "why": "no inner out-of-fold scores (training ran with inner_folds off)"}
    # Thresholds fixed on inner out-of-fold scores, applied to the outer fold (never chosen on it).
    points = fold_operating_points(predictions, inner)
    if selection is not None and selection.height and points.height:
        points = pl.concat([points, nested_operating_points(points, selection, NESTED)])
    summary = summarize(metrics)
    pooled = pooled_metrics(predictions)
    table = comparison_table(summary, pooled, order)
    control = shuffled_label_control(catalog, folds)
    table = table.with_columns(pl.Series("vs_shuffled_control", against_control(summary, control, order)))
    control_row = pl.DataFrame([{c: "" for c in table.columns}]).with_columns(
        pl.lit("logistic_regression (shuffled labels)").alias("model"),
        pl.lit(f"{control['mean_roc_auc']:.3f} ± {control['std_roc_auc']:.3f}").alias("roc_auc"),
        pl.lit(f"{control['pooled_roc_auc']:.3f}").alias("pooled_roc_auc"),
    )
    shown = pl.concat([table, control_row])
    slices = slice_scores(predictions, catalog)
    by_family = manipulation_scores(predictions, catalog)
    out = storage.comparison_dir
    write_parquet_atomic(out / SUMMARY, summary)
    write_parquet_atomic(out / "pooled.parquet", pooled)
    write_parquet_atomic(out / "slices.parquet", slices)
    write_parquet_atomic(out / MANIPULATIONS, by_family)
    write_parquet_atomic(out / OPERATING_POINTS, points)
    write_parquet_atomic(out / "table.parquet", shown)
    write_json_atomic(out / BEST, {"best_model": best, "by": "mean roc_auc over folds", "models": list(MODELS),
                                   "nested": honest, "shuffled_control": control,
                                   "thresholds": deployment_thresholds(predictions)})
    plots = plot_curves(predictions, out)
    refresh_views(storage.root, storage.duckdb_path)
    context.log.info("\n" + markdown(shown))
    metadata = {
        **table_metadata(summary),
        "comparison": dg.MetadataValue.md(markdown(shown)),
        "best_model": best or "none",
        "selection_nested_vs_naive": dg.MetadataValue.json(honest),
        "shuffled_control_roc_auc": dg.MetadataValue.float(control["pooled_roc_auc"]),
        "operating_points": (dg.MetadataValue.md(markdown(operating_table(summarize_points(points), order)))
                             if points.height else "no inner out-of-fold scores to fix thresholds on"),
        "by_manipulation": (dg.MetadataValue.md(markdown(manipulation_table(by_family, order)))
                            if by_family.height else "no manipulation families in the manifests"),
        "weakest_slices_of_best": dg.MetadataValue.md(markdown(weakest_slices(slices, best))) if best else "-",
        "output": dg.MetadataValue.path(str(out)),
    }
    for name, path in plots.items():
        metadata[f"{name}_plot"] = dg.MetadataValue.md(markdown_image(path.read_bytes(), name))
    return dg.MaterializeResult(metadata=metadata)
