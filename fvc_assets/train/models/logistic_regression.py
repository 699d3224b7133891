"""Logistic regression on the 23 features (L2, class-balanced)."""

from __future__ import annotations

from fvc_assets.train.models.feature_model import FeatureModel


class LogisticRegressionModel(FeatureModel):
    name = "logistic_regression"

    def estimator(self, labels):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000, random_state=self.settings.seed)


def build(settings):
    return LogisticRegressionModel(settings)
