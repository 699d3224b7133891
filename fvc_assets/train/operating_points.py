"""Operating points a moderation team works at (pure): a false-positive rate it can afford, or a review
budget (the share of videos people can look at).

For outer fold k, each threshold is fixed on the model's inner out-of-fold scores
(videos of the other folds, scored by models that did not train on them), then
applied to fold k's held-out videos: the fold's own labels never choose it. A
threshold "at 5 % FPR" flags a video whose score is above all but 5 % of the inner
real videos' scores; on the held-out fold the realised FPR is reported beside the
TPR, since with few real videos per fold it can differ from the target.

For scoring new videos (``fvc predict``) a model's thresholds come from all its
outer held-out scores together: scores of videos no fold model trained on.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

FPR_TARGETS = (0.01, 0.05)
REVIEW_BUDGET = 0.10  # share of videos a review team looks at: the top 10 % of scores
DEFAULT_OPERATING_POINT = "fpr_5"  # what fvc predict decides at unless told otherwise


def point_names() -> list[str]:
    return [f"fpr_{round(f * 100):g}" for f in FPR_TARGETS] + [f"top_{round(REVIEW_BUDGET * 100):g}"]


def threshold_at_fpr(real_scores: np.ndarray, fpr: float) -> float:
    """The lowest threshold (flag when score >= it) that flags at most ``fpr`` of ``real_scores``."""
    scores = np.sort(np.asarray(real_scores, float))[::-1]
    if scores.size == 0:
        return math.nan
    allowed = int(math.floor(fpr * scores.size + 1e-9))
    if allowed >= scores.size:
        return float(scores[-1])
    return float(np.nextafter(scores[allowed], np.inf))


def threshold_at_budget(scores: np.ndarray, share: float) -> float:
    """The threshold that flags the top ``share`` of ``scores`` (at least one video)."""
    ordered = np.sort(np.asarray(scores, float))[::-1]
    if ordered.size == 0:
        return math.nan
    return float(ordered[max(1, math.ceil(share * ordered.size)) - 1])


def thresholds(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Operating point name -> threshold, from scores with known labels (1 = fake)."""
    scores, targets = np.asarray(scores, float), np.asarray(targets, int)
    out = {f"fpr_{round(f * 100):g}": threshold_at_fpr(scores[targets == 0], f) for f in FPR_TARGETS}
    out[f"top_{round(REVIEW_BUDGET * 100):g}"] = threshold_at_budget(scores, REVIEW_BUDGET)
    return out


def at_threshold(scores: np.ndarray, targets: np.ndarray, threshold: float) -> dict[str, float]:
    """tpr, fpr, precision and flagged share when videos scoring >= ``threshold`` are flagged."""
    scores, targets = np.asarray(scores, float), np.asarray(targets, int)
    flagged = scores >= threshold
    fakes, reals = targets == 1, targets == 0
    return {
        "tpr": float(flagged[fakes].mean()) if fakes.any() else math.nan,
        "fpr": float(flagged[reals].mean()) if reals.any() else math.nan,
        "precision": float(targets[flagged].mean()) if flagged.any() else math.nan,
        "flagged": float(flagged.mean()) if scores.size else math.nan,
    }


def fold_operating_points(predictions: pl.DataFrame, inner: pl.DataFrame | None) -> pl.DataFrame:
    """model, fold, point, threshold, tpr, fpr, precision, flagged: each model's held-out originals of each
    fold at thresholds fixed on that fold's inner out-of-fold scores. Models without inner scores give no row."""
    schema = {"model": pl.String, "fold": pl.Int64, "point": pl.String, "threshold": pl.Float64,
              "tpr": pl.Float64, "fpr": pl.Float64, "precision": pl.Float64, "flagged": pl.Float64}
    if inner is None or inner.height == 0:
        return pl.DataFrame(schema=schema)
    inner = inner.filter(pl.col("augmentation") == "original")
    held = predictions.filter(pl.col("augmentation") == "original")
    rows = []
    for (model, outer), fitted_on in inner.group_by("model", "outer_fold"):
        scored = held.filter((pl.col("model") == model) & (pl.col("fold") == outer))
        if scored.height == 0:
            continue
        y, s = scored["target"].to_numpy(), scored["score"].to_numpy()
        for point, threshold in thresholds(fitted_on["score"].to_numpy(), fitted_on["target"].to_numpy()).items():
            rows.append({"model": model, "fold": outer, "point": point, "threshold": threshold,
                         **at_threshold(s, y, threshold)})
    return pl.DataFrame(rows, schema=schema).sort("model", "fold", "point")


def nested_operating_points(points: pl.DataFrame, selection: pl.DataFrame, name: str) -> pl.DataFrame:
    """The operating points of the model the nested selection chose for each fold, as model ``name``."""
    chosen = selection.select("fold", "model").unique()
    return points.join(chosen, on=["model", "fold"], how="inner").with_columns(pl.lit(name).alias("model"))


def summarize_points(points: pl.DataFrame) -> pl.DataFrame:
    """model, point, mean and std over folds of tpr, fpr and precision (NaN folds left out)."""
    return (points.group_by("model", "point")
            .agg(*[pl.col(c).fill_nan(None).mean().alias(f"{c}_mean") for c in ("tpr", "fpr", "precision")],
                 *[pl.col(c).fill_nan(None).std().alias(f"{c}_std") for c in ("tpr", "fpr", "precision")],
                 pl.len().alias("folds"))
            .sort("model", "point"))


def operating_table(summary: pl.DataFrame, order: list[str]) -> pl.DataFrame:
    """One row per model: TPR at each FPR target (realised FPR beside it), precision at the review budget."""
    from fvc_assets.train.comparison import mean_std

    rows = []
    for model in order:
        mine = summary.filter(pl.col("model") == model)
        if mine.height == 0:
            continue
        row = {"model": model}
        for point in point_names():
            hit = mine.filter(pl.col("point") == point)
            if not hit.height:
                continue
            if point.startswith("fpr_"):
                row[f"TPR at {point[4:]}% FPR"] = mean_std(hit["tpr_mean"][0], hit["tpr_std"][0], digits=2)
                row[f"realised FPR ({point[4:]}%)"] = mean_std(hit["fpr_mean"][0], hit["fpr_std"][0], digits=2)
            else:
                row[f"precision in top {point[4:]}%"] = mean_std(hit["precision_mean"][0], hit["precision_std"][0], digits=2)
        rows.append(row)
    return pl.DataFrame(rows) if rows else pl.DataFrame({"model": []}, schema={"model": pl.String})


def deployment_thresholds(predictions: pl.DataFrame) -> dict[str, dict[str, float]]:
    """model -> operating point -> threshold, from each model's outer held-out originals of all folds."""
    out = {}
    for (model,), frame in predictions.filter(pl.col("augmentation") == "original").group_by("model"):
        out[model] = thresholds(frame["score"].to_numpy(), frame["target"].to_numpy())
    return dict(sorted(out.items()))


def describe_point(point: str) -> str:
    if point.startswith("fpr_"):
        return f"flag for review at {point[4:]} % FPR"
    return f"flag for review within the top {point[4:]} % of scores"
