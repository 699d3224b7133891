"""The ensemble: a stacked logistic regression over the base models' scores (as logits), and beside it a
weighted average of their probabilities.

Fitted without the fold it scores: for outer fold k, both learn from the base
models' inner out-of-fold scores on the other folds (each scored by a model
trained without it and without fold k), and then combine the scores that the
base models trained on all other folds give fold k. Fold k's labels fit neither
the combiners nor any model whose scores they learn from.

The stacker has one weight per base model plus an intercept; the weighted
average's weights are non-negative, sum to one, and minimise the log loss of
the averaged probability on the same inner scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fvc_resources.atomic import write_json_atomic

EPS = 1e-6
MODEL_FILE = "ensemble.json"


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def fit_average_weights(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to one (a softmax of free parameters) that minimise the log loss
    of ``scores @ weights``; deterministic (L-BFGS from equal weights)."""
    from scipy.optimize import minimize

    scores = np.clip(np.asarray(scores, dtype=float), EPS, 1 - EPS)
    labels = np.asarray(labels, dtype=float)

    def loss(a):
        w = np.exp(a - a.max())
        w /= w.sum()
        p = np.clip(scores @ w, EPS, 1 - EPS)
        return -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))

    result = minimize(loss, np.zeros(scores.shape[1]), method="L-BFGS-B")
    w = np.exp(result.x - result.x.max())
    return w / w.sum()


class StackedEnsemble:
    name = "ensemble"

    def __init__(self, settings):
        self.settings = settings
        self.members: list[str] = []
        self.coef: np.ndarray | None = None
        self.intercept = 0.0
        self.average_weights: np.ndarray | None = None

    def fit_scores(self, scores: np.ndarray, labels: np.ndarray, members: list[str]) -> None:
        from sklearn.linear_model import LogisticRegression

        if len(np.unique(labels)) < 2:
            raise ValueError("ensemble: the inner out-of-fold scores hold only one label")
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(logit(scores), labels)
        self.members, self.coef, self.intercept = list(members), model.coef_[0], float(model.intercept_[0])
        self.average_weights = fit_average_weights(scores, labels)

    def predict_scores(self, scores: np.ndarray) -> np.ndarray:
        z = logit(scores) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def predict_average(self, scores: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(scores, dtype=float) @ self.average_weights, 0.0, 1.0)

    def weights(self) -> dict[str, float]:
        return dict(zip(self.members, map(float, self.coef)))

    def average_weights_by_member(self) -> dict[str, float]:
        return dict(zip(self.members, map(float, self.average_weights)))

    def save(self, folder: Path) -> None:
        write_json_atomic(Path(folder) / MODEL_FILE, {
            "members": self.members, "coef": self.coef.tolist(), "intercept": self.intercept,
            "average_weights": self.average_weights.tolist()})

    def load(self, folder: Path) -> None:
        data = json.loads((Path(folder) / MODEL_FILE).read_text())
        self.members, self.coef, self.intercept = data["members"], np.array(data["coef"]), data["intercept"]
        weights = data.get("average_weights")  # absent in files of earlier versions
        self.average_weights = np.array(weights) if weights is not None else None


def build(settings):
    return StackedEnsemble(settings)
