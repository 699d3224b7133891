"""Leave one manipulation out (pure): how a model scores a family of fakes it never trained on.

For family F and outer fold k, the model trains on fold k's training videos less
every fake of family F (the other families' fakes and every real video stay), and
scores fold k's held-out originals: the fakes of family F against every real video
of the fold. The folds are the main evaluation's, audited for leakage the same
way (``train_fold``'s audit), so a family's score differs from the in-family one
only by what the model saw in training.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl

from fvc_assets.train.catalog import trainable
from fvc_assets.train.fold_training import LeakingSplit, fold_rows
from fvc_assets.train.folds import audit_folds
from fvc_assets.train.metrics import binary_metrics
from fvc_assets.train.models.base import FitContext
from fvc_assets.train.models.registry import build_model
from fvc_core.train_settings import TrainSettings

SCHEMA = {"model": pl.String, "manipulation": pl.String, "fold": pl.Int64, "fakes": pl.Int64, "reals": pl.Int64,
          "roc_auc": pl.Float64, "detected": pl.Float64, "train_seconds": pl.Float64}


def families(catalog: pl.DataFrame) -> list[str]:
    """Manipulation families that the trainable fakes carry (none when the manifests name none)."""
    if "manipulation" not in catalog.columns:
        return []
    fakes = trainable(catalog).filter(pl.col("label") == "fake")
    return sorted(f for f in fakes["manipulation"].unique().to_list() if f and f != "mixed")


def held_out_family(catalog: pl.DataFrame, folds: pl.DataFrame, fold: int, family: str):
    """(training clips without family ``family``'s fakes, held-out originals: that family's fakes and all reals)."""
    train, test, _ = fold_rows(catalog, folds, fold)
    of_family = pl.col("manipulation") == family
    train = train.filter(~((pl.col("label") == "fake") & of_family.fill_null(False)))
    test = test.filter((pl.col("label") == "real") | of_family.fill_null(False))
    return train, test


def cross_manipulation(models: list[str], catalog: pl.DataFrame, folds: pl.DataFrame, settings: TrainSettings,
                       *, root: Path, workdir: Path, frames_cache: Path, n_folds: int,
                       log=print) -> pl.DataFrame:
    """One row per model x family x fold (``SCHEMA``): ROC-AUC of the held-out family's fakes against the
    fold's real videos, for a model trained without that family."""
    report = audit_folds(trainable(catalog), folds, n_folds)
    if not report.passed:
        raise LeakingSplit("folds do not pass the leakage audit against the catalog (materialise `folds` "
                           "again): " + "; ".join(report.problems[:10]))
    rows = []
    for family in families(catalog):
        for fold in range(n_folds):
            train, test = held_out_family(catalog, folds, fold, family)
            fakes, reals = int((test["label"] == "fake").sum()), int((test["label"] == "real").sum())
            if fakes == 0 or reals == 0 or train["label"].n_unique() < 2:
                log(f"{family} fold {fold}: {fakes} held-out fakes, {reals} reals; not scored")
                continue
            for model_name in models:
                started = time.perf_counter()
                folder = workdir / model_name / family / f"fold_{fold}"
                shutil.rmtree(folder, ignore_errors=True)  # a probe never resumes another's checkpoint
                context = FitContext(root=root, workdir=folder, frames_cache=frames_cache,
                                     log=lambda m, f=family, k=fold: log(f"[{f} held out, fold {k}] {m}"))
                model = build_model(model_name, settings)
                model.fit(train, context)
                scores = model.predict(test, context)
                y = (test["label"] == "fake").cast(pl.Int64).to_numpy()
                shutil.rmtree(folder, ignore_errors=True)
                rows.append({"model": model_name, "manipulation": family, "fold": fold, "fakes": fakes,
                             "reals": reals, "roc_auc": binary_metrics(y, scores)["roc_auc"],
                             "detected": float(np.mean(np.asarray(scores)[y == 1] >= 0.5)),
                             "train_seconds": time.perf_counter() - started})
    return pl.DataFrame(rows, schema=SCHEMA)


def summarize_cross(cross: pl.DataFrame, in_family: pl.DataFrame | None) -> pl.DataFrame:
    """model, manipulation, unseen (mean ± std over folds, never trained on the family), in_family (the main
    evaluation's score of the same family's fakes, trained with every family), folds."""
    from fvc_assets.train.comparison import mean_std as fmt

    rows = []
    for (model, family), frame in sorted(cross.group_by("model", "manipulation"), key=lambda item: item[0]):
        values = frame["roc_auc"].drop_nans().drop_nulls()
        seen = (in_family.filter((pl.col("model") == model) & (pl.col("manipulation") == family))
                if in_family is not None else pl.DataFrame())
        rows.append({
            "model": model, "manipulation": family,
            "unseen_roc_auc": fmt(values.mean() if len(values) else math.nan,
                                  values.std() if len(values) > 1 else math.nan),
            "in_family_roc_auc": fmt(seen["roc_auc_mean"][0], seen["roc_auc_std"][0]) if seen.height else "n/a",
            "folds": len(values),
        })
    schema = {"model": pl.String, "manipulation": pl.String, "unseen_roc_auc": pl.String,
              "in_family_roc_auc": pl.String, "folds": pl.Int64}
    return pl.DataFrame(rows, schema=schema)
