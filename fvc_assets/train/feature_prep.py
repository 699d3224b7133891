"""Feature matrix preparation fitted on the training fold only: signed log, collinearity removal, scaling."""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin

from fvc_assets.train.catalog import FEATURE_COLUMNS

COLLINEARITY_THRESHOLD = 0.95


def feature_matrix(clips: pl.DataFrame) -> np.ndarray:
    return clips.select([pl.col(c).cast(pl.Float64) for c in FEATURE_COLUMNS]).to_numpy()


def labels_of(clips: pl.DataFrame) -> np.ndarray:
    return (clips["label"] == "fake").cast(pl.Int64).to_numpy()


class SignedLog(BaseEstimator, TransformerMixin):
    """sign(x) * log(1 + |x|): energies and variances span orders of magnitude between videos, and
    on the log scale a linear model can weigh ratios (noise energy against gradient energy, say)."""

    def fit(self, x, y=None):
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def transform(self, x):
        x = np.asarray(x, dtype=float)
        return np.sign(x) * np.log1p(np.abs(x))


class CollinearityFilter(BaseEstimator, TransformerMixin):
    """Drops constant columns, then each column with |r| > threshold to a column kept before it."""

    def __init__(self, threshold: float = COLLINEARITY_THRESHOLD):
        self.threshold = threshold

    def fit(self, x, y=None):
        x = np.asarray(x, dtype=float)
        varying = np.nanstd(x, axis=0) > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.abs(np.corrcoef(x, rowvar=False)) if x.shape[0] > 1 else np.zeros((x.shape[1],) * 2)
        keep: list[int] = []
        for j in range(x.shape[1]):
            if varying[j] and all(not (corr[j, k] > self.threshold) for k in keep):
                keep.append(j)
        self.keep_ = np.array(keep, dtype=int)
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, x):
        return np.asarray(x, dtype=float)[:, self.keep_]

    def kept_names(self, names=FEATURE_COLUMNS) -> list[str]:
        return [names[j] for j in self.keep_]


def preprocessing():
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("log", SignedLog()), ("collinearity", CollinearityFilter()), ("scale", StandardScaler())])
