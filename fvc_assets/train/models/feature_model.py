"""Models on the 23 catalog features: preprocessing fitted on the training fold, then an estimator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from fvc_assets.train.feature_prep import feature_matrix, labels_of, preprocessing
from fvc_assets.train.models.base import FitContext
from fvc_core.train_settings import TrainSettings

MODEL_FILE = "model.joblib"


class FeatureModel:
    """Subclasses give ``name`` and ``estimator()``; the pipeline is collinearity filter + scaler + it."""

    name = "feature_model"

    def __init__(self, settings: TrainSettings):
        self.settings = settings
        self.pipeline = None

    def estimator(self, labels: np.ndarray):
        raise NotImplementedError

    def fit(self, train: pl.DataFrame, context: FitContext) -> None:
        from sklearn.pipeline import Pipeline

        x, y = feature_matrix(train), labels_of(train)
        if len(np.unique(y)) < 2:
            raise ValueError(f"{self.name}: the training fold holds only one label")
        prep = preprocessing()
        self.pipeline = Pipeline([*prep.steps, ("model", self.estimator(y))])
        self.fit_pipeline(x, y, train)
        kept = self.pipeline.named_steps["collinearity"].kept_names()
        context.info.update(features_kept=len(kept), features_dropped=23 - len(kept), training_clips=len(y))

    def fit_pipeline(self, x: np.ndarray, y: np.ndarray, train: pl.DataFrame) -> None:
        self.pipeline.fit(x, y)

    def predict(self, clips: pl.DataFrame, context: FitContext | None = None) -> np.ndarray:
        if self.pipeline is None:
            raise RuntimeError(f"{self.name} has not been fitted")
        return self.pipeline.predict_proba(feature_matrix(clips))[:, 1]

    def save(self, folder: Path) -> None:
        import joblib

        from fvc_resources.atomic import atomic_path

        with atomic_path(Path(folder) / MODEL_FILE) as tmp:
            joblib.dump(self.pipeline, tmp)

    def load(self, folder: Path) -> None:
        import joblib

        self.pipeline = joblib.load(Path(folder) / MODEL_FILE)
