"""Classification metrics of one set of scores (pure scikit-learn, no Dagster)."""

from __future__ import annotations

import math

import numpy as np

METRIC_NAMES = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "brier")
THRESHOLD = 0.5


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = THRESHOLD) -> dict[str, float]:
    """``labels``: 1 = fake; ``scores``: probability of fake. ROC/PR-AUC are NaN when one class is absent."""
    from sklearn.metrics import (
        accuracy_score, average_precision_score, brier_score_loss, f1_score, precision_score,
        recall_score, roc_auc_score,
    )

    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    if labels.shape != scores.shape or labels.size == 0:
        raise ValueError(f"need matching, non-empty labels and scores (got {labels.shape} and {scores.shape})")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinity")
    predicted = (scores >= threshold).astype(int)
    both = len(np.unique(labels)) == 2
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(labels, scores)) if both else math.nan,
        "pr_auc": float(average_precision_score(labels, scores)) if both else math.nan,
        "brier": float(brier_score_loss(labels, scores, pos_label=1)),
    }


def confusion(labels: np.ndarray, scores: np.ndarray, threshold: float = THRESHOLD) -> dict[str, int]:
    labels = np.asarray(labels, dtype=int)
    predicted = (np.asarray(scores) >= threshold).astype(int)
    return {
        "true_negative": int(np.sum((labels == 0) & (predicted == 0))),
        "false_positive": int(np.sum((labels == 0) & (predicted == 1))),
        "false_negative": int(np.sum((labels == 1) & (predicted == 0))),
        "true_positive": int(np.sum((labels == 1) & (predicted == 1))),
    }
