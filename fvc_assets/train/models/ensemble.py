"""A stacked ensemble: logistic regression over the base models' scores (as logits).

Fitted on other folds only: for fold k, the training rows are the held-out
predictions of the base models on folds j != k (with those folds' labels), and
it scores fold k from the base models trained without fold k. Fold k's labels
never fit the stacker; they did train the base models that scored folds j, an
indirect link that full nesting would remove at five times the training cost.
The stacker has one weight per base model, so it can learn little from it.
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


class StackedEnsemble:
    name = "ensemble"

    def __init__(self, settings):
        self.settings = settings
        self.members: list[str] = []
        self.coef: np.ndarray | None = None
        self.intercept = 0.0

    def fit_scores(self, scores: np.ndarray, labels: np.ndarray, members: list[str]) -> None:
        from sklearn.linear_model import LogisticRegression

        if len(np.unique(labels)) < 2:
            raise ValueError("ensemble: the other folds' predictions hold only one label")
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(logit(scores), labels)
        self.members, self.coef, self.intercept = list(members), model.coef_[0], float(model.intercept_[0])

    def predict_scores(self, scores: np.ndarray) -> np.ndarray:
        z = logit(scores) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def weights(self) -> dict[str, float]:
        return dict(zip(self.members, map(float, self.coef)))

    def save(self, folder: Path) -> None:
        write_json_atomic(Path(folder) / MODEL_FILE, {"members": self.members, "coef": self.coef.tolist(),
                                                      "intercept": self.intercept})

    def load(self, folder: Path) -> None:
        data = json.loads((Path(folder) / MODEL_FILE).read_text())
        self.members, self.coef, self.intercept = data["members"], np.array(data["coef"]), data["intercept"]


def build(settings):
    return StackedEnsemble(settings)
