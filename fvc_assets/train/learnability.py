"""Does a model learn what its input shows? Held-out ROC-AUC beside a shuffled-label control (pure).

A model is trained through the platform's own fold path (``train_fold``: the same
split, frame cache, data set, training loop and scoring as ``fold_results``) once
with the real labels and once with control labels. The control labels are the
real ones with exactly half of each class's groups flipped, so they carry no
information about the real labels (orthogonal, not merely shuffled) and a model
can only fit them by memorising. A data path that misaligns labels and frames,
or scores clips in another order than it returns them, scores like the control.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from fvc_assets.train.fold_training import train_fold
from fvc_assets.train.metrics import binary_metrics
from fvc_core.train_settings import TrainSettings


@dataclass(frozen=True)
class Learnability:
    model: str
    roc_auc: float  # mean over the held-out folds of each fold's ROC-AUC, real labels
    control_roc_auc: float  # the same, trained and scored on the control labels
    pooled_roc_auc: float  # every fold's held-out videos together (fold models' offsets differ: lower)
    fold_roc_auc: tuple[float, ...]  # per held-out fold, real labels
    first_loss: float  # mean training loss of the first epoch (real labels, mean over folds)
    last_loss: float  # ... of the last epoch
    cpu_seconds: float  # process CPU time of the real-label training and scoring
    family_roc_auc: dict = None  # manipulation family -> ROC-AUC of its fakes against every real video
    control_agreement: float = math.nan  # share of groups whose control label is the real one (about 0.5)


    @property
    def margin(self) -> float:
        return self.roc_auc - self.control_roc_auc


def control_labels(folds: pl.DataFrame) -> dict[str, str]:
    """dup_group -> control label: within each fold and real label, every other group (sorted) flipped.

    Flipping within each fold keeps both control labels in every fold (a fold that held only one would
    make a leaking split). A class with an odd number of groups in a fold flips one more or one fewer
    than half, whichever brings that class's running count back towards half; where both classes are odd
    they round the same way, or a fold of one fake and one real could end with one control label."""
    flip = {"fake": "real", "real": "fake"}
    groups = folds.unique("dup_group").sort("dup_group").select("dup_group", "label", "fold")
    surplus = {"fake": 0, "real": 0}  # groups flipped beyond half so far, per class (in halves)
    out = {}
    for fold in sorted(groups["fold"].unique().to_list()):
        mine = {label: groups.filter((pl.col("fold") == fold) & (pl.col("label") == label))["dup_group"].to_list()
                for label in flip}
        odd = [label for label in flip if len(mine[label]) % 2]
        up = sum(surplus[label] for label in odd) < 0 if odd else False
        for label, members in mine.items():
            flipped = len(members) // 2 + (1 if label in odd and up else 0)
            if label in odd:
                surplus[label] += 1 if up else -1
            # Every other group in name order, not the first half: names follow the plan's order, and a
            # control that flips one end of it could be learnt from whatever drifts along it.
            for i, group in enumerate(members[1::2] + members[0::2]):
                out[group] = flip[label] if i < flipped else label
    return out


def control_agreement(folds: pl.DataFrame, labels: dict[str, str]) -> float:
    """Share of groups whose control label is their real label (0.5: the control says nothing of it)."""
    real = dict(folds.unique("dup_group").select("dup_group", "label").iter_rows())
    return float(np.mean([labels[group] == label for group, label in real.items()]))


def relabel(catalog: pl.DataFrame, folds: pl.DataFrame, labels: dict[str, str]):
    """(catalog, folds) with each group's label replaced (groups not in ``labels`` keep theirs)."""
    def apply(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col("dup_group").replace_strict(labels, default=pl.col("label")).alias("label"))
    return apply(catalog), apply(folds)


def held_out(model: str, catalog: pl.DataFrame, folds: pl.DataFrame, settings: TrainSettings, *, root: Path,
             workdir: Path, frames_cache: Path, n_folds: int, log=lambda _: None):
    """(held-out original predictions of every fold, per-fold first and last epoch losses)."""
    frames, losses = [], []
    for fold in range(n_folds):
        folder = workdir / model / f"fold_{fold}"
        shutil.rmtree(folder, ignore_errors=True)  # never resume from an earlier probe
        outcome = train_fold(model, fold, catalog, folds, settings, root=root, workdir=folder,
                             frames_cache=frames_cache, train_dir=workdir, n_folds=n_folds, log=log)
        frames.append(outcome.predictions.filter(pl.col("augmentation") == "original"))
        losses.append((outcome.info.get("loss_epoch_1", math.nan),
                       outcome.info.get(f"loss_epoch_{settings.epochs}", math.nan)))
        shutil.rmtree(folder, ignore_errors=True)
    return pl.concat(frames), losses


def fold_aucs(predictions: pl.DataFrame) -> tuple[float, ...]:
    """ROC-AUC of each fold's held-out videos, in fold order (NaN where a fold holds one label)."""
    return tuple(roc_auc(frame) for _, frame in sorted(predictions.group_by("fold"), key=lambda item: item[0]))


def roc_auc(predictions: pl.DataFrame) -> float:
    return binary_metrics(predictions["target"].to_numpy(), predictions["score"].to_numpy())["roc_auc"]


def measure(model: str, catalog: pl.DataFrame, folds: pl.DataFrame, settings: TrainSettings, *, root: Path,
            workdir: Path, frames_cache: Path, n_folds: int, log=lambda _: None) -> Learnability:
    """Train ``model`` on every fold with the real labels, then with the control labels."""
    started = time.process_time()
    real, losses = held_out(model, catalog, folds, settings, root=root, workdir=workdir / "real",
                            frames_cache=frames_cache, n_folds=n_folds, log=log)
    cpu = time.process_time() - started
    labels = control_labels(folds)
    control_catalog, control_folds = relabel(catalog, folds, labels)
    control, _ = held_out(model, control_catalog, control_folds, settings, root=root, workdir=workdir / "control",
                          frames_cache=frames_cache, n_folds=n_folds, log=log)
    per_fold = fold_aucs(real)
    first, last = (float(np.nanmean([pair[i] for pair in losses])) for i in (0, 1))
    return Learnability(model=model, roc_auc=float(np.nanmean(per_fold)),
                        control_roc_auc=float(np.nanmean(fold_aucs(control))), pooled_roc_auc=roc_auc(real),
                        fold_roc_auc=per_fold, first_loss=first, last_loss=last, cpu_seconds=cpu,
                        family_roc_auc=by_family(real, catalog), control_agreement=control_agreement(folds, labels))


def by_family(predictions: pl.DataFrame, catalog: pl.DataFrame) -> dict[str, float]:
    """manipulation family -> mean over folds of the ROC-AUC of that family's fakes against every real video
    (the comparison's per-family slice)."""
    from fvc_assets.train.comparison import manipulation_scores

    scores = manipulation_scores(predictions, catalog)
    return {family: value for family, value in scores.select("manipulation", "roc_auc_mean").iter_rows()}
