"""Operating points: thresholds fixed on inner folds, applied to the outer fold, and predict's decision."""

import math

import numpy as np
import polars as pl

from fvc_assets.predict import Prediction, decide
from fvc_assets.train.operating_points import (
    at_threshold, deployment_thresholds, fold_operating_points, threshold_at_budget, threshold_at_fpr,
)


def test_threshold_at_fpr_flags_at_most_that_share_of_reals():
    reals = np.linspace(0.0, 0.99, 100)
    for fpr in (0.0, 0.01, 0.05, 0.2):
        t = threshold_at_fpr(reals, fpr)
        assert np.mean(reals >= t) <= fpr + 1e-12
        # ... and is the lowest such threshold: one step lower would flag more than allowed.
        assert np.mean(reals >= np.nextafter(t, -np.inf)) > fpr or t <= reals.min()
    assert threshold_at_fpr(np.array([0.2, 0.2, 0.9]), 0.0) > 0.9


def test_budget_flags_the_top_share():
    scores = np.arange(50) / 50
    t = threshold_at_budget(scores, 0.1)
    assert np.sum(scores >= t) == 5
    assert np.sum(np.array([0.3]) >= threshold_at_budget(np.array([0.3]), 0.1)) == 1


def test_outer_fold_labels_never_choose_the_threshold():
    inner = pl.DataFrame({
        "model": ["m"] * 40, "outer_fold": [0] * 40, "fold": [1] * 20 + [2] * 20,
        "augmentation": ["original"] * 40, "target": [0] * 20 + [1] * 20,
        "score": list(np.linspace(0, 0.5, 20)) + list(np.linspace(0.4, 1.0, 20)),
    })
    held = pl.DataFrame({"model": ["m"] * 6, "fold": [0] * 6, "augmentation": ["original"] * 6,
                         "target": [0, 0, 0, 1, 1, 1], "score": [0.1, 0.2, 0.6, 0.55, 0.7, 0.9]})
    points = fold_operating_points(held, inner)
    at5 = points.filter(pl.col("point") == "fpr_5").row(0, named=True)
    # The inner reals top out at 0.5: the 5 % threshold sits just above their second highest score (one of 20 allowed).
    assert 0.47 < at5["threshold"] <= 0.5
    assert math.isclose(at5["tpr"], 1.0) and math.isclose(at5["fpr"], 1 / 3)
    # Flipping the outer fold's labels moves the rates, never the threshold.
    flipped = fold_operating_points(held.with_columns((1 - pl.col("target")).alias("target")), inner)
    assert flipped["threshold"].to_list() == points["threshold"].to_list()
    assert flipped.filter(pl.col("point") == "fpr_5")["tpr"][0] != at5["tpr"]
    assert at_threshold(np.array([0.1, 0.9]), np.array([0, 1]), 0.5) == {
        "tpr": 1.0, "fpr": 0.0, "precision": 1.0, "flagged": 0.5}


def test_predict_decides_at_the_chosen_point():
    held = pl.DataFrame({"model": ["m"] * 40, "fold": [0] * 40, "augmentation": ["original"] * 40,
                         "target": [0] * 20 + [1] * 20, "score": list(np.linspace(0, 0.5, 20)) + [0.9] * 20})
    thresholds = deployment_thresholds(held)["m"]
    above, below, broken = (Prediction("a.mp4", 0.8, "m", 5), Prediction("b.mp4", 0.2, "m", 5),
                            Prediction("c.mp4", None, "m", 0, "not a video"))
    decide([above, below, broken], thresholds, "fpr_5")
    assert above.decision == "flag for review at 5 % FPR" and above.threshold == thresholds["fpr_5"]
    assert below.decision == "no flag"
    assert broken.decision == ""
    lone = Prediction("d.mp4", 0.8, "m", 5)
    decide([lone], {}, "fpr_1")
    assert "no threshold" in lone.decision


def test_each_model_is_read_against_the_controls_spread():
    from fvc_assets.train.comparison import against_control

    summary = pl.DataFrame({"model": ["a", "b", "c"], "metric": ["roc_auc"] * 3, "mean": [0.9, 0.3, float("nan")],
                            "std": [0.1] * 3, "folds": [5] * 3})
    control = {"mean_roc_auc": 0.3, "std_roc_auc": 0.2, "pooled_roc_auc": 0.3}
    assert against_control(summary, control, ["a", "b", "c", "d"]) == ["+3.0 sd", "+0.0 sd", "n/a", "n/a"]
    assert against_control(summary, {**control, "std_roc_auc": float("nan")}, ["a"]) == ["n/a"]
