"""Models on the 23 catalog features: preprocessing fitted on the training fold, then an estimator.

Fitted pipelines are saved with skops, whose loader builds only the types it is told to trust
(sklearn's, and this platform's own transformers below): loading a model file never runs code
from it, unlike a pickle. ``model.joblib`` files from earlier versions are pickles: they load
only when the caller allows pickles explicitly (``fvc predict --allow-pickle``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl

from fvc_assets.train.feature_prep import feature_matrix, labels_of, preprocessing
from fvc_assets.train.models.base import FitContext
from fvc_core.train_settings import TrainSettings

PIPELINE_FILE = "pipeline.skops"
PICKLE_FILE = "model.joblib"  # written by earlier versions
# This platform's own estimator types inside saved pipelines; skops builds no other non-sklearn type.
OWN_TYPES = (
    "fvc_assets.train.feature_prep.CollinearityFilter",
    "fvc_assets.train.feature_prep.SignedLog",
    "fvc_assets.train.models.linear_svm.SigmoidCalibratedSVC",
)


class PickleRefused(RuntimeError):
    """A model file that is a pickle, which would run code when loaded."""


def dump_skops(obj, path: Path) -> None:
    sio = skops_io()

    from fvc_resources.atomic import atomic_path

    with atomic_path(path) as tmp:
        sio.dump(obj, tmp)


def skops_io():
    """``skops.io``, imported without torch.

    On import it lists scikit-learn's estimators, and pkgutil imports every sklearn subpackage
    to do it, torch's array-API shim among them: about 700 MB resident of torch in a process
    that only scores a feature model (`fvc predict`). While nothing has imported torch yet,
    it is hidden for that import: pkgutil skips a package that fails to import.
    """
    if "torch" in sys.modules:
        import skops.io

        return skops.io
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError meanwhile
    try:
        import skops.io
    finally:
        del sys.modules["torch"]
    return skops.io


def load_skops(path: Path):
    """Load a skops file, refusing any type that is neither sklearn's/numpy's nor one of OWN_TYPES."""
    sio = skops_io()

    untrusted = sio.get_untrusted_types(file=path)
    unknown = [t for t in untrusted if t not in OWN_TYPES]
    if unknown:
        raise PickleRefused(f"{path}: holds types this platform does not load: {', '.join(unknown)}")
    return sio.load(path, trusted=untrusted)


def load_pickle(path: Path, allow_pickle: bool):
    if not allow_pickle:
        raise PickleRefused(f"{path} is a pickle (joblib), which runs code when it is loaded: retrain the model "
                            "(fvc run --force), or allow pickles explicitly if you trust the file (--allow-pickle)")
    import joblib

    return joblib.load(path)


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

    def contributions(self, clips: pl.DataFrame) -> tuple[list[str], np.ndarray]:
        """(the features the model kept, each clip's contribution of each to its log-odds of 'fake'):
        what pushed a score up or down, in the model's own terms."""
        from sklearn.pipeline import Pipeline

        if self.pipeline is None:
            raise RuntimeError(f"{self.name} has not been fitted")
        standardised = Pipeline(self.pipeline.steps[:-1]).transform(feature_matrix(clips))
        names = self.pipeline.named_steps["collinearity"].kept_names()
        return names, self.feature_contributions(standardised)

    def feature_contributions(self, standardised: np.ndarray) -> np.ndarray:
        """Linear models: coefficient x standardised value (log-odds for a logistic model)."""
        return standardised * self.pipeline.named_steps["model"].coef_[0]

    def save(self, folder: Path) -> None:
        dump_skops(self.pipeline, Path(folder) / PIPELINE_FILE)

    def load(self, folder: Path, allow_pickle: bool = False) -> None:
        folder = Path(folder)
        if (folder / PIPELINE_FILE).exists():
            self.pipeline = load_skops(folder / PIPELINE_FILE)
        else:
            self.pipeline = load_pickle(folder / PICKLE_FILE, allow_pickle)
