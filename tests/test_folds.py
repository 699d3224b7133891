"""Folds: grouped, stratified, stable as videos are added; the leakage audit catches real leaks."""

import hashlib

import numpy as np
import polars as pl

from benchmarks.folds_balance import fvc_videos, sgkf_folds, spread
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


# --- balance against scikit-learn's StratifiedGroupKFold ------------------------------------------------------

# SGKF on the FVC manifests reaches fold sizes that differ by one video (std 0.49) and a fake-share std of
# 0.0003: one video moved between two folds of ~1,015 already changes those by ~0.6 and ~0.001. 1.2x of that
# would demand SGKF's exact optimum, so a spread of about two videos is allowed as a floor below which
# differences are single-video ties, not imbalance.
SIZE_STD_FLOOR = 2.0  # videos
SHARE_STD_FLOOR = 0.002  # fake share


def assert_as_balanced_as_sgkf(ours: pl.DataFrame, videos: pl.DataFrame) -> None:
    sizes, size_std, share_std = spread(ours)
    sk_sizes, sk_size_std, sk_share_std = spread(sgkf_folds(videos))
    assert size_std <= max(1.2 * sk_size_std, SIZE_STD_FLOOR), (sizes, sk_sizes)
    assert share_std <= max(1.2 * sk_share_std, SHARE_STD_FLOOR), (share_std, sk_share_std)


def grouped(folds: pl.DataFrame) -> bool:
    return folds.group_by("dup_group").agg(pl.col("fold").n_unique())["fold"].max() == 1


def test_fvc_first_assignment_is_as_balanced_as_stratified_group_kfold(fvc_corpus_dir):
    videos = fvc_videos(fvc_corpus_dir)
    # 5,079 real/fake manifest rows with a platform id, less two whose rows disagree (fake/debunked,
    # real/parody), which ingest labels 'uncertain'.
    assert (videos.height, videos["dup_group"].n_unique()) == (5077, 376)
    ours = assign_folds(videos)
    assert grouped(ours) and ours.height == videos.height
    assert_as_balanced_as_sgkf(ours, videos)
    # Platform (secondary) comes out even as well: SGKF, blind to it, leaves a std of ~0.04 in each share.
    for platform in ("youtube", "facebook", "twitter"):
        share = ours.group_by("fold").agg((pl.col("platform") == platform).mean())["platform"]
        assert share.std(ddof=0) <= 0.01, platform


def test_fvc_folds_stay_put_and_balanced_when_10_percent_of_groups_arrive(fvc_corpus_dir):
    videos = fvc_videos(fvc_corpus_dir)
    order = sorted(videos["dup_group"].unique().to_list(), key=lambda g: hashlib.sha256(f"later:{g}".encode()).digest())
    earlier = videos.filter(pl.col("dup_group").is_in(order[: round(0.9 * len(order))]))
    before = assign_folds(earlier)
    assert_as_balanced_as_sgkf(before, earlier)
    previous = dict(before.select("video_id", "fold").iter_rows())
    after = assign_folds(videos, previous)
    kept = dict(after.select("video_id", "fold").iter_rows())
    assert all(kept[v] == f for v, f in previous.items())
    assert grouped(after)
    # Arrivals cannot always fill five equal gaps: here 38 groups, 586 videos, the largest 104 real videos in one
    # group, then 76 fake. The best split of them by absolute deviation (an exact MILP, measured aside) gives a
    # size CV of 0.024 and a fake-share std of 0.023; this gives 0.016 and 0.025. Bound: CV 0.02 (the old greedy
    # had 0.065 from scratch) and share std 0.03. A StratifiedGroupKFold re-split would move ~3,600 videos.
    sizes, size_std, share_std = spread(after)
    assert size_std / np.mean(sizes) <= 0.02 and share_std <= 0.03, (sizes, share_std)


def heavy_tailed_videos(seed: int = 0, prefix: str = "h") -> pl.DataFrame:
    """30 large groups (10-120 videos, some mixing both labels) and 300 single videos: the shape of FVC."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(330):
        size = int(rng.integers(10, 121)) if g < 30 else 1
        label = "fake" if rng.random() < 0.57 else "real"
        platform = str(rng.choice(["youtube", "facebook", "twitter"]))
        for v in range(size):
            own = ("real" if label == "fake" else "fake") if g % 7 == 0 and v == 0 else label
            rows.append({"video_id": f"{prefix}{g}_v{v}", "dup_group": f"{prefix}{g}", "label": own,
                         "platform": platform})
    return pl.DataFrame(rows)


def test_large_groups_are_balanced_as_well_as_stratified_group_kfold():
    # The old greedy (fewest videos of the same label first) left fold sizes ~100 videos apart here.
    videos = heavy_tailed_videos()
    ours = assign_folds(videos)
    assert grouped(ours)
    assert_as_balanced_as_sgkf(ours, videos)


def test_new_groups_fill_what_earlier_folds_left_uneven():
    first = heavy_tailed_videos(seed=1)
    # An earlier split that used only folds 0 and 1 (say, from a two-fold run).
    previous = {v: int(hashlib.sha256(g.encode()).digest()[0] % 2)
                for v, g in first.select("video_id", "dup_group").iter_rows()}
    grown = pl.concat([first, *(heavy_tailed_videos(seed=s, prefix=f"n{s}_") for s in (2, 3, 4))])
    after = assign_folds(grown, previous)
    assert all(f == previous[v] for v, f in after.select("video_id", "fold").iter_rows() if v in previous)
    sizes, size_std, share_std = spread(after)
    assert size_std <= SIZE_STD_FLOOR and share_std <= SHARE_STD_FLOOR, (sizes, share_std)


def test_assignment_does_not_depend_on_row_order():
    videos = heavy_tailed_videos(seed=4)
    assert assign_folds(videos, seed=3).equals(assign_folds(videos.sample(fraction=1.0, shuffle=True, seed=9), seed=3))
