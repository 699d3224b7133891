"""XGBoost on the 23 features (hist trees, positive class weighted to balance the labels)."""

from __future__ import annotations

import numpy as np

from fvc_assets.train.models.feature_model import FeatureModel


class XgboostModel(FeatureModel):
    name = "xgboost"

    def estimator(self, labels):
        from xgboost import XGBClassifier

        positives = max(1, int(np.sum(labels == 1)))
        return XGBClassifier(
            n_estimators=200, max_depth=3, learning_rate=0.1, subsample=0.8, colsample_bytree=0.8,
            tree_method="hist", scale_pos_weight=float(np.sum(labels == 0)) / positives,
            random_state=self.settings.seed, n_jobs=self.settings.threads or None, eval_metric="logloss",
        )


def build(settings):
    return XgboostModel(settings)
