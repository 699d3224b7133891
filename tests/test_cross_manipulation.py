"""Leave one manipulation family out, per-family slices, and the catalog's manipulation column."""

import numpy as np
import polars as pl
import pytest

from fvc_assets.train.comparison import manipulation_scores
from fvc_assets.train.cross_manipulation import cross_manipulation, families, held_out_family, summarize_cross
from fvc_assets.train.fold_training import LeakingSplit, predictions_frame
from fvc_assets.train.folds import N_FOLDS
from fvc_core.train_settings import DEMO_SETTINGS
from tests.train_data import synthetic_catalog

# Each family shifts its own features: a model that never saw family "a" has no reason to score its fakes high.
TRACES = {"a": ("noise_energy", "gradient_mean"), "b": ("dct_ac_energy", "laplacian_var")}


def two_family_catalog():
    catalog, folds = synthetic_catalog(n_groups=60, shift=0.0)
    rng = np.random.default_rng(1)
    groups = sorted(set(catalog.filter(pl.col("label") == "fake")["dup_group"].to_list()))
    family_of = {g: "a" if i % 2 else "b" for i, g in enumerate(groups)}
    catalog = catalog.with_columns(pl.col("dup_group").replace_strict(family_of, default=None).alias("manipulation"))
    shifted = []
    for row in catalog.iter_rows(named=True):
        for feature in TRACES.get(row["manipulation"], ()):
            row[feature] += 3.0 + rng.normal(0, 0.1)
        shifted.append(row)
    return pl.DataFrame(shifted, schema=catalog.schema), folds


def test_training_never_sees_the_held_out_family_and_scoring_sees_only_it():
    catalog, folds = two_family_catalog()
    assert families(catalog) == ["a", "b"]
    train, test = held_out_family(catalog, folds, 0, "a")
    assert "a" not in set(train.filter(pl.col("label") == "fake")["manipulation"].to_list())
    assert train.filter(pl.col("label") == "real").height > 0
    assert set(test.filter(pl.col("label") == "fake")["manipulation"].to_list()) == {"a"}
    assert set(test["augmentation"].to_list()) == {"original"}
    held = set(folds.filter(pl.col("fold") == 0)["video_id"].to_list())
    assert set(test["video_id"].to_list()) <= held and not set(train["video_id"].to_list()) & held


def test_a_family_never_seen_scores_lower_than_in_family(tmp_path):
    catalog, folds = two_family_catalog()
    cross = cross_manipulation(["logistic_regression"], catalog, folds, DEMO_SETTINGS, root=tmp_path,
                               workdir=tmp_path / "w", frames_cache=tmp_path / "c", n_folds=N_FOLDS, log=lambda _: None)
    assert set(cross["manipulation"].to_list()) == {"a", "b"} and cross["fold"].n_unique() == N_FOLDS
    unseen = cross.group_by("manipulation").agg(pl.col("roc_auc").mean())
    assert unseen["roc_auc"].max() < 0.75, unseen
    # In-family: the same model trained with every family, scored per family by the comparison's slice.
    from fvc_assets.train.fold_training import train_fold

    frames = []
    for fold in range(N_FOLDS):
        outcome = train_fold("logistic_regression", fold, catalog, folds, DEMO_SETTINGS, root=tmp_path,
                             workdir=tmp_path / "lr" / str(fold), frames_cache=tmp_path / "c", train_dir=tmp_path,
                             log=lambda _: None)
        frames.append(outcome.predictions)
    in_family = manipulation_scores(pl.concat(frames), catalog)
    seen_a = in_family.filter(pl.col("manipulation") == "a")["roc_auc_mean"][0]
    unseen_a = unseen.filter(pl.col("manipulation") == "a")["roc_auc"][0]
    assert seen_a > 0.8 and seen_a > unseen_a + 0.15, (seen_a, unseen_a)
    table = summarize_cross(cross, in_family)
    row = table.filter(pl.col("manipulation") == "a").row(0, named=True)
    assert row["folds"] == N_FOLDS
    assert row["in_family_roc_auc"].startswith(f"{seen_a:.3f} ± ")


def test_leaking_folds_are_refused(tmp_path):
    catalog, folds = two_family_catalog()
    video = folds["video_id"][0]
    other = folds.filter(pl.col("fold") != folds["fold"][0])["video_id"][0]
    # Put one video's group on both sides: its group moves with another fold's video.
    group = folds.filter(pl.col("video_id") == other)["dup_group"][0]
    leaking = catalog.with_columns(pl.when(pl.col("video_id") == video).then(pl.lit(group))
                                   .otherwise(pl.col("dup_group")).alias("dup_group"))
    with pytest.raises(LeakingSplit):
        cross_manipulation(["logistic_regression"], leaking, folds, DEMO_SETTINGS, root=tmp_path,
                           workdir=tmp_path / "w", frames_cache=tmp_path / "c", n_folds=N_FOLDS, log=lambda _: None)


def test_manipulation_slice_scores_each_family_against_every_real_video():
    catalog = pl.DataFrame({"video_id": ["r1", "r2", "a1", "b1"], "augmentation": ["original"] * 4,
                            "manipulation": [None, None, "a", "b"]})
    predictions = predictions_frame("m", 0, pl.DataFrame({
        "clip_id": ["r1", "r2", "a1", "b1"], "video_id": ["r1", "r2", "a1", "b1"],
        "label": ["real", "real", "fake", "fake"], "augmentation": ["original"] * 4}), np.array([0.2, 0.6, 0.9, 0.4]))
    scores = manipulation_scores(predictions, catalog)
    by = {r["manipulation"]: r for r in scores.iter_rows(named=True)}
    assert by["a"]["roc_auc"] == 1.0 and by["b"]["roc_auc"] == 0.5
    assert by["a"]["fakes"] == 1 and by["a"]["reals"] == 2 and by["b"]["detected"] == 0.0
