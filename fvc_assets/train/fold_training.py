"""Train one model on the training folds and score the held-out fold (pure: no Dagster).

Training rows: every clip (original and augmented) of the training videos.
Evaluation: the original clip of each held-out video (one score per video);
the held-out videos' augmented clips are scored too and reported apart.

Nested cross-validation (``inner_folds``): the model also trains once per
inner split of the outer training folds (outer fold k held out; each other
fold j in turn scored by a model trained on the remaining three) and writes
those inner out-of-fold scores beside its own. Choosing the best model and
fitting the ensemble for fold k use only them, so fold k's labels never take
part in either; the comparison then reports what "pick the best" scores on
folds it was not picked on.
"""

from __future__ import annotations

import json
import shutil
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
INNER_PREDICTIONS = "inner_predictions.parquet"  # out-of-fold scores on the inner splits of the training folds
AVERAGE_PREDICTIONS = "average_predictions.parquet"  # the ensemble's weighted average, beside its stacker
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
    history: list = field(default_factory=list)  # training curves: (metric, value, timestamp ms, step)
    inner_predictions: pl.DataFrame | None = None
    average_predictions: pl.DataFrame | None = None
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


def _score_matrix(predictions: dict[str, pl.DataFrame], members: list[str]):
    """clip x member score matrix over originals (each member's frame already filtered to the rows wanted)."""
    frames = []
    for member in members:
        p = predictions[member].filter(pl.col("augmentation") == "original")
        frames.append(p.select("clip_id", "video_id", "label", "target", pl.col("score").alias(member)))
    joined = frames[0]
    for extra in frames[1:]:
        joined = joined.join(extra.select("clip_id", extra.columns[-1]), on="clip_id", how="inner")
    return joined.sort("clip_id")


def read_inner_predictions(train_dir: Path, model: str, fold: int) -> pl.DataFrame | None:
    path = train_dir / model / f"fold_{fold}" / INNER_PREDICTIONS
    return pl.read_parquet(path) if path.exists() else None


def stale_inner(inner: pl.DataFrame | None, folds: pl.DataFrame, outer: int) -> str | None:
    """Why the inner scores of outer fold ``outer`` are not usable (None when they are current)."""
    if inner is None or inner.height == 0:
        return "no inner out-of-fold scores (train it with inner_folds on)"
    expected = set(folds.filter(pl.col("fold") != outer)["video_id"].to_list())
    mine = inner.filter(pl.col("augmentation") == "original")
    if mine["video_id"].is_duplicated().any() or set(mine["video_id"].to_list()) != expected:
        return "inner scores are stale (other videos than the current training folds hold)"
    return None


def train_ensemble(fold: int, folds: pl.DataFrame, train_dir: Path, members: list[str], settings: TrainSettings,
                   n_folds: int):
    """Stacker and weighted average for outer fold ``fold``, fitted on the members' inner out-of-fold scores
    within the other folds, applied to the members' scores of fold ``fold``."""
    members = [m for m in members if settings.trains_inner_folds(spec(m).inputs)]
    if not members:
        raise ValueError("ensemble: no base models to combine (the model list holds only the ensemble, or none "
                         "trains on inner folds)")
    outer, inner, missing = {}, {}, []
    for member in members:
        p = read_predictions(train_dir, member)
        why = stale_folds(p, folds, n_folds).get(fold)
        if why:
            missing.append(f"{member}/fold_{fold} ({why})")
        else:
            outer[member] = p.filter(pl.col("fold") == fold)
        q = read_inner_predictions(train_dir, member, fold)
        why = stale_inner(q, folds, fold)
        if why:
            missing.append(f"{member}/fold_{fold} ({why})")
        else:
            inner[member] = q
    if missing:
        raise MissingBaseResults(
            "ensemble needs the other models' current fold_results first: " + ", ".join(missing))
    model = build_model("ensemble", settings)
    train = _score_matrix(inner, members)
    test = _score_matrix(outer, members)
    model.fit_scores(train.select(members).to_numpy(), train["target"].to_numpy(), members)
    matrix = test.select(members).to_numpy()
    held_out = test.with_columns(pl.lit("original").alias("augmentation"))
    info = {"members": members, "weights": model.weights(), "average_weights": model.average_weights_by_member(),
            "training_clips": train.height, "fitted_on": "inner out-of-fold scores of the other folds"}
    return model, held_out, model.predict_scores(matrix), model.predict_average(matrix), info


def inner_predictions(model_name: str, outer: int, catalog: pl.DataFrame, folds: pl.DataFrame,
                      settings: TrainSettings, *, root: Path, workdir: Path, frames_cache: Path, n_folds: int,
                      log=print) -> pl.DataFrame:
    """The model trained on each inner split of outer fold ``outer``'s training folds, scoring the inner
    held-out fold's originals: one out-of-fold score per training video."""
    frames = []
    for inner in range(n_folds):
        if inner == outer:
            continue
        kept = folds.filter(pl.col("fold") != outer)
        train, held_out, _ = fold_rows(catalog, kept, inner)
        if held_out.height == 0:
            raise ValueError(f"inner fold {inner} of outer fold {outer} holds no videos")
        context = FitContext(root=root, workdir=workdir / f"inner_{inner}", frames_cache=frames_cache,
                             log=lambda message, inner=inner: log(f"[inner fold {inner}] {message}"))
        model = build_model(model_name, settings)
        model.fit(train, context)
        frames.append(predictions_frame(model_name, inner, held_out, model.predict(held_out, context))
                      .with_columns(pl.lit(outer, dtype=pl.Int64).alias("outer_fold")))
    # The inner checkpoints served only to resume an interrupted step; a full-size network's is ~1 GB.
    for inner in range(n_folds):
        shutil.rmtree(workdir / f"inner_{inner}", ignore_errors=True)
    return pl.concat(frames)


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
    for name in (PREDICTIONS, METRICS, MODEL_INFO, INNER_PREDICTIONS, AVERAGE_PREDICTIONS):
        (workdir / name).unlink(missing_ok=True)
    report = audit_folds(trainable(catalog), folds, n_folds)
    if not report.passed:  # e.g. folds older than the catalog after a manifest merged two groups
        raise LeakingSplit("folds do not pass the leakage audit against the catalog (materialise `folds` "
                           "again): " + "; ".join(report.problems[:10]))
    expected_videos = folds.filter(pl.col("fold") == fold).height
    history, inner, average = [], None, None
    if spec(model_name).inputs == "scores":
        model, held_out, scores, average_scores, info = train_ensemble(
            fold, folds, train_dir, list(ensemble_members or []), settings, n_folds)
        predictions = predictions_frame(model_name, fold, held_out, scores)
        average = predictions_frame(f"{model_name}_average", fold, held_out, average_scores)
    else:
        train, held_out, augmented = fold_rows(catalog, folds, fold)
        if held_out.height == 0:
            raise ValueError(f"fold {fold} holds no videos")
        context = FitContext(root=root, workdir=workdir, frames_cache=frames_cache, log=log)
        model = build_model(model_name, settings)
        model.fit(train, context)
        info, history = dict(context.info), context.history
        scored = pl.concat([held_out, augmented]) if augmented.height else held_out
        predictions = predictions_frame(model_name, fold, scored, model.predict(scored, context))
        if settings.trains_inner_folds(spec(model_name).inputs):
            inner = inner_predictions(model_name, fold, catalog, folds, settings, root=root, workdir=workdir,
                                      frames_cache=frames_cache, n_folds=n_folds, log=log)
            info["inner_folds"] = sorted(set(inner["fold"].to_list()))
    model.save(workdir)
    originals = predictions.filter(pl.col("augmentation") == "original")
    info["expected_videos"] = expected_videos
    outcome = FoldOutcome(
        model=model_name, fold=fold, predictions=predictions,
        metrics=_metrics(originals),
        augmented_metrics=_metrics(predictions.filter(pl.col("augmentation") != "original")),
        confusion=confusion(originals["target"].to_numpy(), originals["score"].to_numpy()),
        info=info, seconds=time.perf_counter() - started, history=history, inner_predictions=inner,
        average_predictions=average,
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

    if outcome.inner_predictions is not None:
        write_parquet_atomic(workdir / INNER_PREDICTIONS, outcome.inner_predictions)
    if outcome.average_predictions is not None:
        write_parquet_atomic(workdir / AVERAGE_PREDICTIONS, outcome.average_predictions)
    outcome.files = [
        write_parquet_atomic(workdir / PREDICTIONS, outcome.predictions),
        write_parquet_atomic(workdir / METRICS, metrics_frame(outcome)),
        write_json_atomic(workdir / MODEL_INFO, {"model": outcome.model, "fold": outcome.fold,
                                                 "settings": asdict(settings), "info": _jsonable(outcome.info)}),
    ]


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))
