"""XGBoost on the 23 features (hist trees, positive class weighted to balance the labels).

Saved as XGBoost's own JSON model (``xgboost.json``) beside the fitted preprocessing (skops).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fvc_assets.train.models.feature_model import (
    PICKLE_FILE,
    FeatureModel,
    dump_skops,
    load_pickle,
    load_skops,
)

PREPROCESSING_FILE = "preprocessing.skops"
BOOSTER_FILE = "xgboost.json"


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

    def feature_contributions(self, standardised):
        # XGBoost's own per-feature contributions (TreeSHAP, log-odds); the last column is the bias.
        from xgboost import DMatrix

        booster = self.pipeline.named_steps["model"].get_booster()
        return booster.predict(DMatrix(standardised), pred_contribs=True)[:, :-1]

    def save(self, folder: Path) -> None:
        from sklearn.pipeline import Pipeline

        from fvc_resources.atomic import atomic_path

        folder = Path(folder)
        dump_skops(Pipeline(self.pipeline.steps[:-1]), folder / PREPROCESSING_FILE)
        with atomic_path(folder / BOOSTER_FILE) as tmp:
            self.pipeline.named_steps["model"].save_model(tmp)

    def load(self, folder: Path, allow_pickle: bool = False) -> None:
        from sklearn.pipeline import Pipeline
        from xgboost import XGBClassifier

        folder = Path(folder)
        if not (folder / BOOSTER_FILE).exists():
            self.pipeline = load_pickle(folder / PICKLE_FILE, allow_pickle)
            return
        model = XGBClassifier()
        model.load_model(folder / BOOSTER_FILE)
        self.pipeline = Pipeline([*load_skops(folder / PREPROCESSING_FILE).steps, ("model", model)])


def build(settings):
    return XgboostModel(settings)
