"""Linear SVM whose margins become probabilities through a Platt (sigmoid) mapping.

The mapping is fitted on out-of-fold margins inside the training fold, grouped
by dup_group, so augmented copies and reposts of one video never calibrate each other.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from fvc_assets.train.models.feature_model import FeatureModel


class SigmoidCalibratedSVC(ClassifierMixin, BaseEstimator):
    """sklearn-style estimator: LinearSVC margins -> logistic mapping (predict_proba)."""

    def __init__(self, seed: int = 0, groups=None):
        self.seed = seed
        self.groups = groups

    def _svc(self):
        from sklearn.svm import LinearSVC

        return LinearSVC(C=0.1, class_weight="balanced", max_iter=20000, random_state=self.seed)

    def fit(self, x, y):
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GroupKFold, cross_val_predict

        groups = self.groups if self.groups is not None else np.arange(len(y))
        n_splits = min(3, len(np.unique(groups)))
        if n_splits < 2:
            raise ValueError("linear_svm: the training fold holds one dup_group; the sigmoid mapping needs two")
        margins = cross_val_predict(self._svc(), x, y, groups=groups, cv=GroupKFold(n_splits),
                                    method="decision_function")
        self.platt_ = LogisticRegression().fit(margins.reshape(-1, 1), y)
        self.svc_ = self._svc().fit(x, y)
        self.classes_ = self.svc_.classes_
        return self

    def predict_proba(self, x):
        p = self.platt_.predict_proba(self.svc_.decision_function(x).reshape(-1, 1))[:, 1]
        return np.column_stack([1 - p, p])


class LinearSvmModel(FeatureModel):
    name = "linear_svm"

    def estimator(self, labels):
        return SigmoidCalibratedSVC(seed=self.settings.seed)

    def fit_pipeline(self, x, y, train):
        # Reposts (one dup_group) must not calibrate each other: group the inner folds by dup_group.
        self.pipeline.named_steps["model"].groups = train["dup_group"].to_numpy()
        self.pipeline.fit(x, y)
        self.pipeline.named_steps["model"].groups = None  # not needed once fitted; keeps the pickle small


    def feature_contributions(self, standardised):
        # The margin's terms (coefficient x standardised value), through the Platt slope into log-odds.
        model = self.pipeline.named_steps["model"]
        return standardised * model.svc_.coef_[0] * model.platt_.coef_[0, 0]


def build(settings):
    return LinearSvmModel(settings)
