"""Train one model on the training folds and score the held-out fold (pure: no Dagster).

Training rows: every clip (original and augmented) of the training videos.
Evaluation: the original clip of each held-out video (one score per video);
the held-out videos' augmented clips are scored too and reported apart.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from fvc_assets.train.catalog import trainable
from fvc_assets.train.folds import audit_folds, split
from fvc_assets.train.metrics import binary_metrics, confusion
from fvc_assets.train.models.base import FitContext
from fvc_assets.train.models.registry import build_model, spec
from fvc_core.train_settings import TrainSettings
from fvc_resources.atomic import write_json_atomic, write_parquet_atomic

PREDICTIONS = "predictions.parquet"
METRICS = "metrics.parquet"
SUMMARY = "summary.json"
MODEL_INFO = "model.json"


@dataclass
class FoldOutcome:
    model: str
    fold: int
    predictions: pl.DataFrame
    metrics: dict[str, float]
    augmented_metrics: dict[str, float]
    confusion: dict[str, int]
    info: dict = field(default_factory=dict)
    seconds: float = 0.0
    files: list[Path] = field(default_factory=list)


class MissingBaseResults(RuntimeError):
    """The ensemble needs other models' fold results that are not there yet (or are stale)."""


class LeakingSplit(RuntimeError):
    """The folds on disk do not pass the leakage audit against the catalog on disk."""


def stale_folds(predictions: pl.DataFrame | None, folds: pl.DataFrame, n_folds: int) -> dict[int, str]:
    """fold -> why, for each fold whose held-out originals in ``predictions`` are not the current fold's videos."""
    out = {}
    for fold in range(n_folds):
        expected = set(folds.filter(pl.col("fold") == fold)["video_id"].to_list())
        if predictions is None:
            out[fold] = "missing"
            continue
        mine = predictions.filter((pl.col("fold") == fold) & (pl.col("augmentation") == "original"))
        if mine.height == 0:
            out[fold] = "missing"
        elif mine["video_id"].is_duplicated().any() or set(mine["video_id"].to_list()) != expected:
            out[fold] = "stale (scored other videos than the current fold holds)"
    return out


def fold_rows(catalog: pl.DataFrame, folds: pl.DataFrame, fold: int):
    """(training clips, held-out originals, held-out augmented clips)."""
    clips = trainable(catalog)
    training, held_out = split(folds, fold)
    train = clips.filter(pl.col("video_id").is_in(sorted(training)))
    test = clips.filter(pl.col("video_id").is_in(sorted(held_out)))
    return (train, test.filter(pl.col("augmentation") == "original"),
            test.filter(pl.col("augmentation") != "original"))


def predictions_frame(model: str, fold: int, clips: pl.DataFrame, scores: np.ndarray) -> pl.DataFrame:
    return clips.select("clip_id", "video_id", "label", "augmentation").with_columns(
        pl.lit(model).alias("model"), pl.lit(fold, dtype=pl.Int64).alias("fold"),
        (pl.col("label") == "fake").cast(pl.Int64).alias("target"),
        pl.Series("score", np.asarray(scores, dtype=float)),
    ).select("model", "fold", "clip_id", "video_id", "label", "target", "augmentation", "score")


def _metrics(frame: pl.DataFrame) -> dict[str, float]:
    if frame.height == 0:
        return {}
    return binary_metrics(frame["target"].to_numpy(), frame["score"].to_numpy())


def read_predictions(train_dir: Path, model: str) -> pl.DataFrame | None:
    files = sorted((train_dir / model).glob(f"fold_*/{PREDICTIONS}"))
    return pl.concat([pl.read_parquet(f) for f in files]) if files else None


def _score_matrix(predictions: dict[str, pl.DataFrame], fold_filter, members: list[str]):
    """clip x member score matrix over originals, from each member's predictions on the selected folds."""
    frames = []
    for member in members:
        p = predictions[member].filter(fold_filter & (pl.col("augmentation") == "original"))
        frames.append(p.select("clip_id", "video_id", "label", "target", pl.col("score").alias(member)))
    joined = frames[0]
    for extra in frames[1:]:
        joined = joined.join(extra.select("clip_id", extra.columns[-1]), on="clip_id", how="inner")
    return joined.sort("clip_id")


def train_ensemble(fold: int, folds: pl.DataFrame, train_dir: Path, members: list[str], settings: TrainSettings,
                   n_folds: int):
    if not members:
        raise ValueError("ensemble: no base models to combine (the model list holds only the ensemble)")
    predictions, missing = {}, []
    for member in members:
        p = read_predictions(train_dir, member)
        missing += [f"{member}/fold_{k} ({why})" for k, why in stale_folds(p, folds, n_folds).items()]
        predictions[member] = p
    if missing:
        raise MissingBaseResults(
            "ensemble needs the other models' current fold_results first: " + ", ".join(missing))
    model = build_model("ensemble", settings)
    train = _score_matrix(predictions, pl.col("fold") != fold, members)
    test = _score_matrix(predictions, pl.col("fold") == fold, members)
    model.fit_scores(train.select(members).to_numpy(), train["target"].to_numpy(), members)
    scores = model.predict_scores(test.select(members).to_numpy())
    held_out = test.with_columns(pl.lit("original").alias("augmentation"))
    return model, held_out, scores, {"members": members, "weights": model.weights(), "training_clips": train.height}


def train_fold(
    model_name: str,
    fold: int,
    catalog: pl.DataFrame,
    folds: pl.DataFrame,
    settings: TrainSettings,
    *,
    root: Path,
    workdir: Path,
    frames_cache: Path,
    train_dir: Path,
    ensemble_members: list[str] | None = None,
    n_folds: int = 5,
    log=print,
) -> FoldOutcome:
    """Fit, score, and write model file, predictions and metrics into ``workdir`` (atomically)."""
    started = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    # Results of an earlier run must never stand in for this one if it fails (the checkpoint stays).
    for name in (PREDICTIONS, METRICS, MODEL_INFO):
        (workdir / name).unlink(missing_ok=True)
    report = audit_folds(trainable(catalog), folds, n_folds)
    if not report.passed:  # e.g. folds older than the catalog after a manifest merged two groups
        raise LeakingSplit("folds do not pass the leakage audit against the catalog (materialise `folds` "
                           "again): " + "; ".join(report.problems[:10]))
    expected_videos = folds.filter(pl.col("fold") == fold).height
    if spec(model_name).inputs == "scores":
        model, held_out, scores, info = train_ensemble(
            fold, folds, train_dir, list(ensemble_members or []), settings, n_folds)
        predictions = predictions_frame(model_name, fold, held_out, scores)
    else:
        train, held_out, augmented = fold_rows(catalog, folds, fold)
        if held_out.height == 0:
            raise ValueError(f"fold {fold} holds no videos")
        context = FitContext(root=root, workdir=workdir, frames_cache=frames_cache, log=log)
        model = build_model(model_name, settings)
        model.fit(train, context)
        info = dict(context.info)
        scored = pl.concat([held_out, augmented]) if augmented.height else held_out
        predictions = predictions_frame(model_name, fold, scored, model.predict(scored, context))
    model.save(workdir)
    originals = predictions.filter(pl.col("augmentation") == "original")
    info["expected_videos"] = expected_videos
    outcome = FoldOutcome(
        model=model_name, fold=fold, predictions=predictions,
        metrics=_metrics(originals),
        augmented_metrics=_metrics(predictions.filter(pl.col("augmentation") != "original")),
        confusion=confusion(originals["target"].to_numpy(), originals["score"].to_numpy()),
        info=info, seconds=time.perf_counter() - started,
    )
    write_outputs(outcome, workdir, settings)
    return outcome


def metrics_frame(outcome: FoldOutcome) -> pl.DataFrame:
    rows = [(k, v) for k, v in outcome.metrics.items()]
    rows += [(f"augmented_{k}", v) for k, v in outcome.augmented_metrics.items()]
    rows += [(f"confusion_{k}", float(v)) for k, v in outcome.confusion.items()]
    rows += [("train_seconds", outcome.seconds)]
    return pl.DataFrame(
        {"model": [outcome.model] * len(rows), "fold": [outcome.fold] * len(rows),
         "metric": [r[0] for r in rows], "value": [float(r[1]) for r in rows]},
        schema={"model": pl.String, "fold": pl.Int64, "metric": pl.String, "value": pl.Float64},
    )


def write_outputs(outcome: FoldOutcome, workdir: Path, settings: TrainSettings) -> None:
    from dataclasses import asdict

    outcome.files = [
        write_parquet_atomic(workdir / PREDICTIONS, outcome.predictions),
        write_parquet_atomic(workdir / METRICS, metrics_frame(outcome)),
        write_json_atomic(workdir / MODEL_INFO, {"model": outcome.model, "fold": outcome.fold,
                                                 "settings": asdict(settings), "info": _jsonable(outcome.info)}),
    ]


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))
