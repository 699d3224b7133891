"""Folds: grouped, stratified, stable as videos are added; the leakage audit catches real leaks."""

import numpy as np
import polars as pl

from fvc_assets.train.folds import assign_folds, audit_folds, split


def synthetic_videos(n_groups: int, seed: int = 0, prefix: str = "g") -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        label = "fake" if rng.random() < 0.5 else "real"
        platform = str(rng.choice(["youtube", "facebook", "unknown"]))
        for v in range(int(rng.integers(1, 5))):
            rows.append({"video_id": f"{prefix}{g}_v{v}", "dup_group": f"{prefix}{g}", "label": label,
                         "platform": platform})
    return pl.DataFrame(rows)


def clips_of(videos: pl.DataFrame, per_video: int = 3) -> pl.DataFrame:
    return pl.DataFrame([
        {"clip_id": f"{v}__{i}", "video_id": v, "dup_group": g, "label": lab}
        for v, g, lab in videos.select("video_id", "dup_group", "label").iter_rows() for i in range(per_video)
    ])


def test_groups_stay_together_and_labels_are_balanced():
    videos = synthetic_videos(60)
    folds = assign_folds(videos)
    assert folds.height == videos.height
    assert folds.group_by("dup_group").agg(pl.col("fold").n_unique())["fold"].max() == 1
    for label in ("fake", "real"):
        per_fold = folds.filter(pl.col("label") == label).group_by("fold").len()["len"].to_list()
        assert len(per_fold) == 5
        assert max(per_fold) - min(per_fold) <= 4  # at most one group's worth (groups hold 1-4 videos)
    report = audit_folds(clips_of(videos), folds)
    assert report.passed, report.problems
    assert report.counts["clips"].sum() == videos.height * 3


def test_adding_videos_never_moves_an_existing_group():
    first = synthetic_videos(30, seed=1)
    before = assign_folds(first)
    previous = dict(before.select("video_id", "fold").iter_rows())
    grown = pl.concat([first, synthetic_videos(25, seed=2, prefix="new")])
    after = assign_folds(grown, previous)
    kept = dict(after.select("video_id", "fold").iter_rows())
    assert all(kept[v] == f for v, f in previous.items())
    # ... and the new groups still fill the folds by label.
    assert audit_folds(clips_of(grown), after).passed


def test_a_group_merged_by_a_new_video_takes_its_majority_fold():
    videos = pl.DataFrame({"video_id": ["a", "b", "c"], "dup_group": ["g", "g", "g"],
                           "label": ["fake"] * 3, "platform": ["unknown"] * 3})
    folds = assign_folds(videos, previous={"a": 3, "b": 3, "c": 1})
    assert set(folds["fold"].to_list()) == {3}


def test_assignment_is_deterministic_and_seeded():
    videos = synthetic_videos(40, seed=5)
    assert assign_folds(videos, seed=0).equals(assign_folds(videos, seed=0))
    assert not assign_folds(videos, seed=0).equals(assign_folds(videos, seed=1))


def test_split_puts_each_video_on_one_side():
    videos = synthetic_videos(20, seed=3)
    folds = assign_folds(videos)
    for fold in range(5):
        training, held_out = split(folds, fold)
        assert not training & held_out
        assert training | held_out == set(videos["video_id"].to_list())


def test_audit_names_split_groups_unassigned_clips_and_one_label_folds():
    videos = synthetic_videos(30, seed=4)
    folds = assign_folds(videos)
    group = folds["dup_group"][0]
    members = folds.filter(pl.col("dup_group") == group)
    if members.height < 2:
        extra = members.with_columns(pl.lit("extra").alias("video_id"))
        folds = pl.concat([folds, extra])
        videos = pl.concat([videos, pl.DataFrame({"video_id": ["extra"], "dup_group": [group],
                                                  "label": [members["label"][0]], "platform": ["unknown"]})])
    leaking = folds.with_columns(
        pl.when(pl.col("video_id") == folds.filter(pl.col("dup_group") == group)["video_id"][-1])
        .then((pl.col("fold") + 1) % 5).otherwise(pl.col("fold")).alias("fold")
    )
    report = audit_folds(clips_of(videos), leaking)
    assert any(f"dup_group {group} is on both sides" in p for p in report.problems)

    dropped = folds.filter(pl.col("video_id") != folds["video_id"][1])
    report = audit_folds(clips_of(videos), dropped)
    assert any(p.startswith(f"clip {folds['video_id'][1]}__0 has no fold") for p in report.problems)

    only_real = folds.with_columns(pl.when(pl.col("fold") == 2).then(pl.lit("real")).otherwise("label").alias("label"))
    clips = clips_of(only_real)
    report = audit_folds(clips, only_real)
    assert "fold 2 holds no fake video" in report.problems
