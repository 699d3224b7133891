"""Comparing models across folds (pure): summaries, slices, plots, the best model, a shuffled control."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl

from fvc_assets.train.metrics import METRIC_NAMES, binary_metrics

HEADLINE = ("roc_auc", "pr_auc", "accuracy", "f1", "brier")


def summarize(metrics: pl.DataFrame) -> pl.DataFrame:
    """model, metric, mean, std (over folds), folds; for the core metric names."""
    return (
        metrics.filter(pl.col("metric").is_in(list(METRIC_NAMES)) | pl.col("metric").str.starts_with("augmented_")
                       | (pl.col("metric") == "train_seconds"))
        .group_by("model", "metric")
        .agg(pl.col("value").mean().alias("mean"), pl.col("value").std(ddof=1).alias("std"),
             pl.len().alias("folds"))
        .sort("model", "metric")
    )


def originals(predictions: pl.DataFrame) -> pl.DataFrame:
    return predictions.filter(pl.col("augmentation") == "original")


def metrics_by(predictions: pl.DataFrame, *keys: str) -> pl.DataFrame:
    """*keys, metric, value: the metrics of the held-out originals of each ``keys`` group."""
    types = {"model": pl.String, "fold": pl.Int64}
    rows = []
    for values, frame in originals(predictions).group_by(*keys):
        for metric, value in binary_metrics(frame["target"].to_numpy(), frame["score"].to_numpy()).items():
            rows.append({**dict(zip(keys, values)), "metric": metric, "value": value})
    return pl.DataFrame(rows, schema={**{k: types[k] for k in keys}, "metric": pl.String, "value": pl.Float64})


def pooled_metrics(predictions: pl.DataFrame) -> pl.DataFrame:
    """Metrics over all folds' held-out originals together (one score per video), per model."""
    return metrics_by(predictions, "model")


def best_model(summary: pl.DataFrame) -> str | None:
    """Highest mean ROC-AUC over folds (NaN ignored); None when no model has one."""
    roc = summary.filter((pl.col("metric") == "roc_auc") & pl.col("mean").is_not_nan() & pl.col("mean").is_not_null())
    if roc.height == 0:
        return None
    return roc.sort(["mean", "model"], descending=[True, False])["model"][0]


NESTED = "best model, chosen by inner CV (nested)"


def inner_scores(inner: pl.DataFrame) -> pl.DataFrame:
    """model, outer_fold, inner_roc_auc: per outer fold, the mean over its inner folds of the ROC-AUC of
    each model's inner out-of-fold scores (videos of the outer training folds only)."""
    from sklearn.metrics import roc_auc_score

    rows = []
    for (model, outer, fold), frame in originals(inner).group_by("model", "outer_fold", "fold"):
        y = frame["target"].to_numpy()
        auc = float(roc_auc_score(y, frame["score"].to_numpy())) if len(np.unique(y)) == 2 else math.nan
        rows.append({"model": model, "outer_fold": outer, "fold": fold, "roc_auc": auc})
    schema = {"model": pl.String, "outer_fold": pl.Int64, "fold": pl.Int64, "roc_auc": pl.Float64}
    return (pl.DataFrame(rows, schema=schema).filter(pl.col("roc_auc").is_not_nan())
            .group_by("model", "outer_fold").agg(pl.col("roc_auc").mean().alias("inner_roc_auc"))
            .sort("outer_fold", "model"))


def nested_selection(inner: pl.DataFrame, metrics: pl.DataFrame) -> pl.DataFrame:
    """Per outer fold: the model with the best inner ROC-AUC (chosen without that fold's labels) and that
    model's metrics on the outer fold. Columns: fold, model, inner_roc_auc, metric, value."""
    scores = inner_scores(inner)
    if scores.height == 0:
        return pl.DataFrame(schema={"fold": pl.Int64, "model": pl.String, "inner_roc_auc": pl.Float64,
                                    "metric": pl.String, "value": pl.Float64})
    chosen = (scores.sort(["outer_fold", "inner_roc_auc", "model"], descending=[False, True, False])
              .group_by("outer_fold", maintain_order=True).first()
              .rename({"outer_fold": "fold"}))
    return chosen.join(metrics, on=["model", "fold"], how="left").sort("fold", "metric")


def nested_metrics(selection: pl.DataFrame) -> pl.DataFrame:
    """The selection procedure as one more "model": its per-fold metrics (model, fold, metric, value)."""
    return selection.select(pl.lit(NESTED).alias("model"), "fold", "metric", "value")


def nested_predictions(selection: pl.DataFrame, predictions: pl.DataFrame) -> pl.DataFrame:
    """The chosen model's held-out scores of each outer fold, as the selection procedure's predictions."""
    chosen = selection.select("fold", "model").unique()
    return (originals(predictions).join(chosen, on=["fold", "model"], how="inner")
            .with_columns(pl.lit(NESTED).alias("model")))


def per_fold_metrics(predictions: pl.DataFrame) -> pl.DataFrame:
    """model, fold, metric, value over each fold's held-out originals (for scores no fold_results wrote)."""
    return metrics_by(predictions, "model", "fold")


def naive_and_nested(summary: pl.DataFrame, selection: pl.DataFrame) -> dict:
    """The best model's mean ROC-AUC as picked on the folds it is scored on, beside the nested estimate."""
    naive = best_model(summary)
    roc = summary.filter((pl.col("model") == naive) & (pl.col("metric") == "roc_auc"))
    nested = selection.filter(pl.col("metric") == "roc_auc")
    return {
        "naive_pick": naive,
        "naive_roc_auc": float(roc["mean"][0]) if roc.height else math.nan,
        "nested_roc_auc": float(nested["value"].mean()) if nested.height else math.nan,
        "nested_choices": {str(f): m for f, m in nested.select("fold", "model").iter_rows()},
    }


def resolution_bucket(width: int, height: int) -> str:
    short = min(width, height)
    if short <= 360:
        return "<=360p"
    if short <= 720:
        return "361-720p"
    return ">720p"


def duration_bucket(seconds: float) -> str:
    if seconds < 5:
        return "<5s"
    if seconds < 10:
        return "5-10s"
    return ">=10s"


def video_facts(catalog: pl.DataFrame) -> pl.DataFrame:
    """One row per video: the slicing columns."""
    videos = catalog.filter(pl.col("augmentation") == "original").unique("video_id")
    return videos.select(
        "video_id",
        pl.struct("source_width", "source_height").map_elements(
            lambda r: resolution_bucket(r["source_width"], r["source_height"]), return_dtype=pl.String
        ).alias("resolution"),
        pl.col("source_codec").alias("codec"),
        pl.col("source_duration").map_elements(duration_bucket, return_dtype=pl.String).alias("duration"),
        "platform",
    )


def slice_scores(predictions: pl.DataFrame, catalog: pl.DataFrame) -> pl.DataFrame:
    """model, slice, value, videos, fake, accuracy, roc_auc (NaN where a slice holds one label)."""
    joined = originals(predictions).join(video_facts(catalog), on="video_id", how="left")
    rows = []
    for dimension in ("resolution", "codec", "duration", "platform"):
        for (model, value), frame in joined.group_by("model", dimension):
            if value is None or (dimension == "platform" and value == "unknown"):
                continue
            y, s = frame["target"].to_numpy(), frame["score"].to_numpy()
            m = binary_metrics(y, s)
            rows.append({"model": model, "slice": dimension, "value": str(value), "videos": len(y),
                         "fake": int(y.sum()), "accuracy": m["accuracy"], "roc_auc": m["roc_auc"]})
    schema = {"model": pl.String, "slice": pl.String, "value": pl.String, "videos": pl.Int64, "fake": pl.Int64,
              "accuracy": pl.Float64, "roc_auc": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort("model", "slice", "value")


def manipulation_scores(predictions: pl.DataFrame, catalog: pl.DataFrame) -> pl.DataFrame:
    """How each model scores each manipulation family's fakes against every real video.

    model, manipulation, fakes, reals, roc_auc (pooled over the held-out folds), roc_auc_mean and
    roc_auc_std (over the folds that hold fakes of the family), detected (share of the family's fakes
    at or above 0.5). A family absent from the manifests (no ``manipulation``) gives no row.
    """
    schema = {"model": pl.String, "manipulation": pl.String, "fakes": pl.Int64, "reals": pl.Int64,
              "roc_auc": pl.Float64, "roc_auc_mean": pl.Float64, "roc_auc_std": pl.Float64,
              "detected": pl.Float64}
    if "manipulation" not in catalog.columns:
        return pl.DataFrame(schema=schema)
    families = catalog.filter(pl.col("augmentation") == "original").unique("video_id").select(
        "video_id", "manipulation")
    joined = originals(predictions).join(families, on="video_id", how="left")
    rows = []
    for (model,), scored in joined.group_by("model"):
        reals = scored.filter(pl.col("target") == 0)
        for family in sorted(f for f in scored["manipulation"].unique().to_list() if f):
            fakes = scored.filter((pl.col("target") == 1) & (pl.col("manipulation") == family))
            both = pl.concat([fakes, reals])
            y, s = both["target"].to_numpy(), both["score"].to_numpy()
            per_fold = [binary_metrics(f["target"].to_numpy(), f["score"].to_numpy())["roc_auc"]
                        for (_,), f in both.group_by("fold")]
            per_fold = [v for v in per_fold if not math.isnan(v)]
            rows.append({
                "model": model, "manipulation": family, "fakes": fakes.height, "reals": reals.height,
                "roc_auc": binary_metrics(y, s)["roc_auc"] if reals.height and fakes.height else math.nan,
                "roc_auc_mean": float(np.mean(per_fold)) if per_fold else math.nan,
                "roc_auc_std": float(np.std(per_fold, ddof=1)) if len(per_fold) > 1 else math.nan,
                "detected": float((fakes["score"].to_numpy() >= 0.5).mean()) if fakes.height else math.nan,
            })
    return pl.DataFrame(rows, schema=schema).sort("model", "manipulation")


def manipulation_table(scores: pl.DataFrame, order: list[str]) -> pl.DataFrame:
    """Models x families: mean ± std over folds of ROC-AUC (family's fakes against all reals)."""
    families = sorted(set(scores["manipulation"].to_list()))
    rows = []
    for model in order:
        mine = scores.filter(pl.col("model") == model)
        if mine.height == 0:
            continue
        row = {"model": model}
        for family in families:
            hit = mine.filter(pl.col("manipulation") == family)
            row[family] = mean_std(hit["roc_auc_mean"][0], hit["roc_auc_std"][0]) if hit.height else "n/a"
        rows.append(row)
    return pl.DataFrame(rows) if rows else pl.DataFrame({"model": []}, schema={"model": pl.String})


def weakest_slices(slices: pl.DataFrame, model: str, n: int = 5) -> pl.DataFrame:
    return slices.filter((pl.col("model") == model) & (pl.col("videos") >= 2)).sort("accuracy").head(n)


def mean_std(mean: float | None, std: float | None, digits: int = 3) -> str:
    """'mean ± std' (just the mean when there is no std; 'n/a' without a mean)."""
    if mean is None or math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None and not math.isnan(std) else f"{mean:.{digits}f}"


def comparison_table(summary: pl.DataFrame, pooled: pl.DataFrame, order: list[str]) -> pl.DataFrame:
    """One row per model: mean ± std of each headline metric, pooled ROC-AUC, train seconds."""
    rows = []
    for model in order:
        row = {"model": model}
        mine = summary.filter(pl.col("model") == model)
        for metric in HEADLINE:
            hit = mine.filter(pl.col("metric") == metric)
            row[metric] = mean_std(hit["mean"][0], hit["std"][0]) if hit.height else "n/a"
        hit = pooled.filter((pl.col("model") == model) & (pl.col("metric") == "roc_auc"))
        row["pooled_roc_auc"] = f"{hit['value'][0]:.3f}" if hit.height and not math.isnan(hit["value"][0]) else "n/a"
        hit = mine.filter(pl.col("metric") == "train_seconds")
        row["train_s_per_fold"] = f"{hit['mean'][0]:.1f}" if hit.height else "n/a"
        rows.append(row)
    return pl.DataFrame(rows)


def against_control(summary: pl.DataFrame, control: dict[str, float], order: list[str]) -> list[str]:
    """Per model: how far its mean ROC-AUC over folds lies above the shuffled control's, in the control's
    standard deviations over folds (the control's spread, not 0.5, is what chance looks like here)."""
    mean, std = control.get("mean_roc_auc", math.nan), control.get("std_roc_auc", math.nan)
    out = []
    for model in order:
        hit = summary.filter((pl.col("model") == model) & (pl.col("metric") == "roc_auc"))
        value = hit["mean"][0] if hit.height else math.nan
        if value is None or math.isnan(value) or math.isnan(mean) or math.isnan(std) or std == 0:
            out.append("n/a")
        else:
            out.append(f"{(value - mean) / std:+.1f} sd")
    return out


def markdown(table: pl.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.iter_rows()]
    return "\n".join([header, rule, *body])


def plain_table(table: pl.DataFrame) -> str:
    widths = [max(len(str(c)), *(len(str(v)) for v in table[c])) for c in table.columns]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(table.columns, widths))]
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)) for row in table.iter_rows()]
    return "\n".join(lines)


def shuffled_label_control(catalog: pl.DataFrame, folds: pl.DataFrame, seed: int = 0) -> dict[str, float]:
    """Logistic regression through the same folds with labels shuffled between groups.

    Labels move with their dup_group (every clip of a group gets the same
    shuffled label), so the control keeps the group structure; ROC-AUC near 0.5
    says the real-label score is not produced by the split or the pipeline.
    """
    from fvc_assets.train.fold_training import fold_rows
    from fvc_assets.train.models.base import FitContext
    from fvc_assets.train.models.logistic_regression import LogisticRegressionModel
    from fvc_core.train_settings import TrainSettings

    groups = folds.unique("dup_group").sort("dup_group")
    rng = np.random.default_rng(seed)
    shuffled = dict(zip(groups["dup_group"].to_list(), rng.permutation(groups["label"].to_list())))
    relabelled = catalog.with_columns(pl.col("dup_group").replace_strict(shuffled, default=pl.col("label"))
                                      .alias("label"))
    relabelled_folds = folds.with_columns(pl.col("dup_group").replace_strict(shuffled, default=None).alias("label"))
    scores, targets, per_fold = [], [], []
    for fold in sorted(relabelled_folds["fold"].unique().to_list()):
        train, test, _ = fold_rows(relabelled, relabelled_folds, fold)
        if len(set(train["label"].to_list())) < 2 or test.height == 0:
            continue
        model = LogisticRegressionModel(TrainSettings(seed=seed))
        model.fit(train, FitContext(root=Path("."), workdir=Path("."), frames_cache=Path(".")))
        s = model.predict(test)
        y = (test["label"] == "fake").cast(pl.Int64).to_numpy()
        scores.append(s)
        targets.append(y)
        if len(np.unique(y)) == 2:
            per_fold.append(binary_metrics(y, s)["roc_auc"])
    pooled = binary_metrics(np.concatenate(targets), np.concatenate(scores))["roc_auc"] if scores else math.nan
    return {"pooled_roc_auc": pooled, "mean_roc_auc": float(np.mean(per_fold)) if per_fold else math.nan,
            "std_roc_auc": float(np.std(per_fold, ddof=1)) if len(per_fold) > 1 else math.nan}


def plot_curves(predictions: pl.DataFrame, out_dir: Path) -> dict[str, Path]:
    """ROC, PR and calibration (reliability) plots of every model's pooled held-out scores, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss, precision_recall_curve, roc_curve

    from fvc_resources.atomic import atomic_path

    data = originals(predictions)
    figures = {name: plt.subplots(figsize=(6, 5), dpi=100) for name in ("roc", "pr", "calibration")}
    for (model,), frame in sorted(data.group_by("model"), key=lambda item: item[0]):
        y, s = frame["target"].to_numpy(), frame["score"].to_numpy()
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, s)
        figures["roc"][1].plot(fpr, tpr, label=model)
        precision, recall, _ = precision_recall_curve(y, s)
        figures["pr"][1].plot(recall, precision, label=model)
        observed, predicted = calibration_curve(y, s, n_bins=5, strategy="quantile")
        figures["calibration"][1].plot(predicted, observed, marker="o",
                                       label=f"{model} (Brier {brier_score_loss(y, s):.3f})")
    labels = {"roc": ("false positive rate", "true positive rate", "ROC (held-out videos, all folds)"),
              "pr": ("recall", "precision", "Precision-recall (held-out videos, all folds)"),
              "calibration": ("mean predicted P(fake)", "fraction fake", "Calibration (quantile bins)")}
    paths = {}
    for name, (figure, axes) in figures.items():
        if name in ("roc", "calibration"):
            axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
        x, y_label, title = labels[name]
        axes.set(xlabel=x, ylabel=y_label, title=title, xlim=(0, 1), ylim=(0, 1.02))
        axes.legend(fontsize=7, loc="lower right" if name != "pr" else "lower left")
        figure.tight_layout()
        target = out_dir / f"{name}.png"
        with atomic_path(target) as tmp:
            figure.savefig(tmp, format="png")
        plt.close(figure)
        paths[name] = target
    return paths
