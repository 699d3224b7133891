"""Group-aware, label-stratified, stable k-fold assignment, and the leakage audit of a split.

Stability: a video that had a fold keeps it. A group (``dup_group``) takes the
fold most of its previously assigned videos had, so adding videos never moves
an existing group; only new groups are placed. New groups are placed one by
one, largest first and then in the order of a seeded hash of their id, into
the fold with the fewest videos of the same label (then of the same
platform, then overall), so folds stay
balanced by label without re-shuffling what is already assigned.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass

import polars as pl

N_FOLDS = 5


def group_order_key(group: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def group_strata(videos: pl.DataFrame) -> dict[str, tuple[str, str]]:
    """dup_group -> (label, platform); a group whose videos disagree gets 'mixed'."""
    strata = {}
    for group, frame in videos.group_by("dup_group"):
        labels = set(frame["label"].to_list())
        platforms = set(frame["platform"].to_list()) - {"unknown"}
        label = labels.pop() if len(labels) == 1 else "mixed"
        platform = platforms.pop() if len(platforms) == 1 else "unknown"
        strata[group[0]] = (label, platform)
    return strata


def assign_folds(
    videos: pl.DataFrame, previous: dict[str, int] | None = None, n_folds: int = N_FOLDS, seed: int = 0
) -> pl.DataFrame:
    """One row per video: video_id, dup_group, label, platform, fold.

    ``videos`` has video_id, dup_group, label, platform; ``previous`` maps
    video_id -> fold from the last assignment (videos no longer present are ignored).
    """
    previous = previous or {}
    strata = group_strata(videos)
    members = defaultdict(list)
    for video_id, group in videos.select("video_id", "dup_group").iter_rows():
        members[group].append(video_id)

    fold_of: dict[str, int] = {}
    for group, ids in members.items():
        earlier = Counter(previous[v] for v in ids if v in previous and 0 <= previous[v] < n_folds)
        if earlier:
            fold_of[group] = min(earlier, key=lambda f: (-earlier[f], f))

    by_stratum: Counter = Counter()
    by_label: Counter = Counter()
    total: Counter = Counter()

    def count(group: str, fold: int) -> None:
        # Balance videos, not groups: a cascade of four reposts weighs four.
        label, platform = strata[group]
        size = len(members[group])
        by_stratum[(label, platform, fold)] += size
        by_label[(label, fold)] += size
        total[fold] += size

    for group, fold in fold_of.items():
        count(group, fold)
    # Larger groups first (they are the hard ones to balance), then in seeded hash order.
    new_groups = sorted((g for g in members if g not in fold_of),
                        key=lambda g: (-len(members[g]), group_order_key(g, seed)))
    for group in new_groups:
        label, platform = strata[group]
        fold = min(
            range(n_folds),
            key=lambda f: (by_label[(label, f)], by_stratum[(label, platform, f)], total[f], f),
        )
        fold_of[group] = fold
        count(group, fold)

    return videos.select("video_id", "dup_group", "label", "platform").with_columns(
        pl.col("dup_group").replace_strict(fold_of, return_dtype=pl.Int64).alias("fold")
    ).sort("fold", "dup_group", "video_id")


@dataclass
class LeakageReport:
    problems: list[str]
    counts: pl.DataFrame  # fold, label, groups, videos, clips

    @property
    def passed(self) -> bool:
        return not self.problems


def audit_folds(clips: pl.DataFrame, folds: pl.DataFrame, n_folds: int = N_FOLDS) -> LeakageReport:
    """Does this split leak? ``clips``: trainable catalog rows; ``folds``: the assignment per video."""
    problems: list[str] = []
    duplicated = folds.group_by("video_id").agg(pl.col("fold").n_unique().alias("n")).filter(pl.col("n") > 1)
    for video in duplicated["video_id"].to_list():
        problems.append(f"video {video} is in more than one fold")
    split_groups = folds.group_by("dup_group").agg(pl.col("fold").unique().sort().alias("folds"))
    for group, in_folds in split_groups.filter(pl.col("folds").list.len() > 1).iter_rows():
        problems.append(f"dup_group {group} is on both sides of a split (folds {in_folds})")

    joined = clips.select("clip_id", "video_id", "dup_group", "label").join(
        folds.select("video_id", pl.col("dup_group").alias("fold_dup_group"), "fold").unique("video_id"),
        on="video_id", how="left",
    )
    for clip in joined.filter(pl.col("fold").is_null())["clip_id"].to_list():
        problems.append(f"clip {clip} has no fold")
    stale = joined.filter(pl.col("fold").is_not_null() & (pl.col("dup_group") != pl.col("fold_dup_group")))
    for clip, group, recorded in stale.select("clip_id", "dup_group", "fold_dup_group").unique("clip_id").iter_rows():
        problems.append(f"clip {clip}: catalog dup_group {group} but folds recorded {recorded} (folds are stale)")
    # Augmented clips must share their source's group: the same video_id, hence one group per video.
    groups_per_video = joined.group_by("video_id").agg(pl.col("dup_group").n_unique().alias("n"))
    for video in groups_per_video.filter(pl.col("n") > 1)["video_id"].to_list():
        problems.append(f"clips of video {video} carry different dup_groups")

    if folds.height == 0:
        problems.append("no labelled (real/fake) video to split")
    assigned = joined.filter(pl.col("fold").is_not_null())
    counts = (
        assigned.group_by("fold", "label")
        .agg(pl.col("dup_group").n_unique().alias("groups"), pl.col("video_id").n_unique().alias("videos"),
             pl.len().alias("clips"))
        .sort("fold", "label")
    )
    labels = set(assigned["label"].unique().to_list())
    for fold in range(n_folds):
        present = set(counts.filter(pl.col("fold") == fold)["label"].to_list())
        for label in sorted(labels - present):
            problems.append(f"fold {fold} holds no {label} video")
    return LeakageReport(problems=problems, counts=counts)


def split(folds: pl.DataFrame, fold: int) -> tuple[set[str], set[str]]:
    """(training video ids, held-out video ids) for one fold."""
    held_out = set(folds.filter(pl.col("fold") == fold)["video_id"].to_list())
    training = set(folds.filter(pl.col("fold") != fold)["video_id"].to_list())
    return training, held_out
