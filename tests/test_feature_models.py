"""Feature models, metrics, collinearity removal, the ensemble and the shuffled-label control."""

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fvc_assets.train.comparison import shuffled_label_control
from fvc_assets.train.feature_prep import CollinearityFilter
from fvc_assets.train.fold_training import MissingBaseResults, train_fold
from fvc_assets.train.metrics import binary_metrics, confusion
from fvc_assets.train.models.registry import build_model
from fvc_core.train_settings import DEMO_SETTINGS
from tests.train_data import synthetic_catalog

FEATURE_MODELS = ["logistic_regression", "linear_svm", "xgboost"]


def test_metrics_on_known_scores():
    y = np.array([0, 0, 1, 1])
    perfect = binary_metrics(y, np.array([0.0, 0.0, 1.0, 1.0]))
    assert perfect["roc_auc"] == 1.0 and perfect["accuracy"] == 1.0 and perfect["brier"] == 0.0
    reversed_ = binary_metrics(y, np.array([0.9, 0.8, 0.2, 0.1]))
    assert reversed_["roc_auc"] == 0.0 and reversed_["recall"] == 0.0
    assert confusion(y, np.array([0.9, 0.1, 0.6, 0.4])) == {
        "true_negative": 1, "false_positive": 1, "false_negative": 1, "true_positive": 1}
    assert math.isnan(binary_metrics(np.array([1, 1]), np.array([0.2, 0.9]))["roc_auc"])
    with pytest.raises(ValueError, match="NaN"):
        binary_metrics(y, np.array([0.1, np.nan, 0.3, 0.4]))


def test_collinearity_filter_drops_near_copies_and_constants():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200), rng.normal(size=200)
    x = np.column_stack([a, 3 * a + rng.normal(scale=0.01, size=200), b, np.ones(200), -b])
    kept = CollinearityFilter(0.95).fit(x).keep_
    assert kept.tolist() == [0, 2]


@pytest.mark.parametrize("name", FEATURE_MODELS)
def test_feature_model_learns_scores_and_round_trips(name, tmp_path):
    catalog, folds = synthetic_catalog()
    outcome = train_fold(name, 0, catalog, folds, DEMO_SETTINGS, root=tmp_path, workdir=tmp_path / "w",
                         frames_cache=tmp_path / "c", train_dir=tmp_path)
    assert outcome.metrics["roc_auc"] > 0.9
    held_out = set(folds.filter(pl.col("fold") == 0)["video_id"].to_list())
    originals = outcome.predictions.filter(pl.col("augmentation") == "original")
    assert set(originals["video_id"].to_list()) == held_out  # one score per held-out video
    assert originals.height == len(held_out)
    assert outcome.info["training_clips"] == catalog.filter(~pl.col("video_id").is_in(sorted(held_out))).height
    assert (tmp_path / "w" / "predictions.parquet").exists() and (tmp_path / "w" / "metrics.parquet").exists()
    # A saved model scores exactly as the fitted one.
    loaded = build_model(name, DEMO_SETTINGS)
    loaded.load(tmp_path / "w")
    clips = outcome.predictions.select("clip_id").join(catalog, on="clip_id", how="left", maintain_order="left")
    assert np.allclose(loaded.predict(clips), outcome.predictions["score"].to_numpy())
    # Saved in formats that run no code on load: skops (sklearn), XGBoost's JSON; no pickle.
    files = {p.name for p in (tmp_path / "w").iterdir()}
    assert not any(f.endswith((".joblib", ".pkl")) for f in files)
    assert ({"preprocessing.skops", "xgboost.json"} if name == "xgboost" else {"pipeline.skops"}) <= files


def test_pickled_model_files_load_only_when_allowed(tmp_path):
    """A model.joblib (earlier versions) is a pickle: refused unless allowed; skops files with a type
    that is neither sklearn's nor the platform's are refused too."""
    import joblib
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    from fvc_assets.train.models.feature_model import PickleRefused

    catalog, folds = synthetic_catalog()
    train_fold("logistic_regression", 0, catalog, folds, DEMO_SETTINGS, root=tmp_path, workdir=tmp_path / "w",
               frames_cache=tmp_path / "c", train_dir=tmp_path)
    fitted = build_model("logistic_regression", DEMO_SETTINGS)
    fitted.load(tmp_path / "w")
    old = tmp_path / "old"
    old.mkdir()
    joblib.dump(fitted.pipeline, old / "model.joblib")
    model = build_model("logistic_regression", DEMO_SETTINGS)
    with pytest.raises(PickleRefused, match="pickle.*--allow-pickle"):
        model.load(old)
    model.load(old, allow_pickle=True)
    assert isinstance(model.pipeline, Pipeline)

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    sio.dump(Pipeline([("model", ForeignEstimator())]), foreign / "pipeline.skops")
    with pytest.raises(PickleRefused, match="ForeignEstimator"):
        build_model("logistic_regression", DEMO_SETTINGS).load(foreign)


class ForeignEstimator:
    """A type skops must not build from a file unless told to trust it."""

    def get_params(self, deep=True):
        return {}


def test_shuffled_labels_score_near_chance_while_real_labels_do_not(tmp_path):
    catalog, folds = synthetic_catalog(n_groups=60, seed=1)
    control = shuffled_label_control(catalog, folds, seed=0)
    assert abs(control["pooled_roc_auc"] - 0.5) < 0.2
    scores = []
    for fold in range(5):
        outcome = train_fold("logistic_regression", fold, catalog, folds, DEMO_SETTINGS, root=tmp_path,
                             workdir=tmp_path / f"fold_{fold}", frames_cache=tmp_path, train_dir=tmp_path)
        scores.append(outcome.metrics["roc_auc"])
    assert np.mean(scores) > 0.9


def _base_predictions(train_dir: Path, catalog, folds, tmp_path):
    for name in ("logistic_regression", "xgboost"):
        for fold in range(5):
            train_fold(name, fold, catalog, folds, DEMO_SETTINGS, root=tmp_path, workdir=train_dir / name / f"fold_{fold}",
                       frames_cache=tmp_path, train_dir=train_dir)


def test_ensemble_never_sees_the_labels_of_the_fold_it_scores(tmp_path):
    catalog, folds = synthetic_catalog(seed=2)
    members = ["logistic_regression", "xgboost"]
    with pytest.raises(MissingBaseResults, match="logistic_regression/fold_0"):
        train_fold("ensemble", 0, catalog, folds, DEMO_SETTINGS, root=tmp_path, workdir=tmp_path / "e",
                   frames_cache=tmp_path, train_dir=tmp_path / "train", ensemble_members=members)
    # Fold 1's labels flipped in the catalog every base model trains from: the ensemble for fold 1 must not
    # change. (Stacking on the other folds' outer scores would: those models learnt fold 1's labels.)
    fold_1 = folds.filter(pl.col("fold") == 1)["video_id"].to_list()
    flipped = catalog.with_columns(
        pl.when(pl.col("video_id").is_in(fold_1)).then(
            pl.when(pl.col("label") == "fake").then(pl.lit("real")).otherwise(pl.lit("fake")))
        .otherwise(pl.col("label")).alias("label"))
    outcomes = []
    for name, table in (("a", catalog), ("b", flipped)):
        train_dir = tmp_path / name
        for member in members:
            for fold in range(5):
                train_fold(member, fold, table, folds, DEMO_SETTINGS, root=tmp_path,
                           workdir=train_dir / member / f"fold_{fold}", frames_cache=tmp_path, train_dir=train_dir)
        outcomes.append(train_fold("ensemble", 1, table, folds, DEMO_SETTINGS, root=tmp_path,
                                   workdir=train_dir / "ensemble" / "fold_1", frames_cache=tmp_path,
                                   train_dir=train_dir, ensemble_members=members))
    first, second = outcomes
    assert first.metrics["roc_auc"] > 0.9
    assert first.info["training_clips"] == folds.height - len(fold_1)  # one inner score per training video
    assert np.allclose(first.predictions["score"].to_numpy(), second.predictions["score"].to_numpy())
    assert np.allclose(first.average_predictions["score"].to_numpy(), second.average_predictions["score"].to_numpy())
    weights = first.info["average_weights"]
    assert set(weights) == set(members) and sum(weights.values()) == pytest.approx(1.0)
    assert min(weights.values()) >= 0


def test_training_refuses_folds_that_leak_against_the_catalog(tmp_path):
    from fvc_assets.train.fold_training import LeakingSplit

    catalog, folds = synthetic_catalog(seed=3)
    # A manifest merged two groups after the folds were made: the catalog now says g0 and g1 are one group.
    merged = catalog.with_columns(pl.col("dup_group").replace({"g1": "g0"}))
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "predictions.parquet").write_bytes(b"old")
    with pytest.raises(LeakingSplit, match="materialise `folds` again"):
        train_fold("logistic_regression", 0, merged, folds, DEMO_SETTINGS, root=tmp_path, workdir=tmp_path / "w",
                   frames_cache=tmp_path, train_dir=tmp_path)
    assert not (tmp_path / "w" / "predictions.parquet").exists(), "an earlier run's results must not stand in"


def test_ensemble_refuses_base_results_made_on_other_folds(tmp_path):
    catalog, folds = synthetic_catalog(seed=4)
    train_dir = tmp_path / "train"
    _base_predictions(train_dir, catalog, folds, tmp_path)
    # Group g0 moves into or out of fold 0: the scores on disk were made for other folds.
    moved = folds.with_columns(pl.when(pl.col("dup_group") == "g0").then(pl.when(pl.col("fold") == 0).then(1)
                                                                        .otherwise(0))
                               .otherwise(pl.col("fold")).alias("fold"))
    with pytest.raises(MissingBaseResults, match="stale"):
        train_fold("ensemble", 0, catalog, moved, DEMO_SETTINGS, root=tmp_path, workdir=tmp_path / "e",
                   frames_cache=tmp_path, train_dir=train_dir, ensemble_members=["logistic_regression", "xgboost"])


def test_fold_history_brings_a_returning_video_back_to_its_fold(tmp_path):
    from fvc_assets.train.folds_assets import merged_history, previous_assignment

    history = tmp_path / "folds_history.parquet"
    first = pl.DataFrame({"video_id": ["a", "b"], "fold": [3, 1], "seed": [0, 0]})
    merged_history(history, first).write_parquet(history)
    # Video a drops out of the labelled set (relabelled uncertain) and folds are made again without it.
    second = pl.DataFrame({"video_id": ["b"], "fold": [1], "seed": [0]})
    merged_history(history, second).write_parquet(history)
    assert previous_assignment(history, seed=0) == {"a": 3, "b": 1}
    assert previous_assignment(history, seed=1) == {}


@pytest.mark.parametrize("name", FEATURE_MODELS)
def test_contributions_explain_the_score_and_name_the_features_that_carry_the_signal(name, tmp_path):
    from fvc_assets.train.models.base import FitContext
    from fvc_assets.train.models.ensemble import logit
    from tests.train_data import SIGNAL

    catalog, _ = synthetic_catalog(n_groups=60, seed=5)
    model = build_model(name, DEMO_SETTINGS)
    model.fit(catalog, FitContext(root=tmp_path, workdir=tmp_path, frames_cache=tmp_path))
    fakes = catalog.filter(pl.col("label") == "fake").head(20)
    names, contributions = model.contributions(fakes)
    assert contributions.shape == (20, len(names))
    # The features the fakes were shifted in push their scores up the most, on average.
    mean = dict(zip(names, contributions.mean(axis=0)))
    top = sorted(mean, key=lambda f: -mean[f])[:3]
    assert len(set(top) & set(SIGNAL)) >= 2, top
    # The contributions are the score's own terms: they add up to its log-odds (less a constant).
    offset = logit(model.predict(fakes)) - contributions.sum(axis=1)
    assert np.ptp(offset) < 1e-3
