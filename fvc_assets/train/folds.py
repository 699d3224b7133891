"""Group-aware, label-stratified, stable k-fold assignment, and the leakage audit of a split.

Stability: a video that had a fold keeps it. A group (``dup_group``) takes the
fold most of its previously assigned videos had, so adding videos never moves
an existing group; only new groups are placed.

Balance: every fold should hold a ``1/n_folds`` share of the videos of each
label (primary), and of each (label, platform) stratum and of the videos in
groups whose labels disagree ('mixed'; secondary). Targets are those shares of
all videos, already assigned ones included, so new groups fill what earlier
assignments left uneven. Imbalance is the sum over folds of the squared
distance of these counts from their targets, compared primary first (label
counts and fold size), secondary only to break ties, in exact integers.

New groups are placed largest first (equal sizes in the order of a seeded hash
of their id), each into the fold where it lowers the imbalance most; then a
local search moves one new group to another fold, or swaps two new groups
between folds, while that lowers the imbalance (the best such step each time).
Groups assigned earlier never take part in a move. The result depends on the
seed and on the videos, not on their row order.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
import polars as pl

N_FOLDS = 5
# Local search steps at most, per new group: a cap on time only (every step strictly lowers the imbalance,
# so the search ends by itself; on FVC it takes about 50 steps in all).
MAX_STEPS_PER_GROUP = 20
# Swap candidates evaluated at once (pairs x features), to bound memory on large corpora.
BLOCK_CELLS = 1 << 21


def group_order_key(group: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def group_counts(videos: pl.DataFrame, groups: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per group (rows in the order of ``groups``): primary counts (videos per label, then all videos) and
    secondary counts (videos per (label, platform), then videos of the group if its labels disagree)."""
    index = {g: i for i, g in enumerate(groups)}
    rows = np.array([index[g] for g in videos["dup_group"].to_list()], dtype=np.int64)
    labels = videos["label"].to_list()
    platforms = videos["platform"].to_list()
    label_keys = {k: i for i, k in enumerate(sorted(set(labels), key=str))}
    stratum_keys = {k: i for i, k in enumerate(sorted(set(zip(labels, platforms)), key=str))}
    primary = np.zeros((len(groups), len(label_keys) + 1), dtype=np.int64)
    np.add.at(primary, (rows, np.array([label_keys[k] for k in labels], dtype=np.int64)), 1)
    primary[:, -1] = primary[:, :-1].sum(axis=1)
    secondary = np.zeros((len(groups), len(stratum_keys) + 1), dtype=np.int64)
    np.add.at(secondary, (rows, np.array([stratum_keys[k] for k in zip(labels, platforms)], dtype=np.int64)), 1)
    mixed = (primary[:, :-1] > 0).sum(axis=1) > 1
    secondary[:, -1] = np.where(mixed, primary[:, -1], 0)
    return primary, secondary


def balance(primary: np.ndarray, secondary: np.ndarray, folds: np.ndarray, rotation: np.ndarray,
            n_folds: int) -> np.ndarray:
    """Folds for the rows of ``folds`` that are -1 (new groups, in placement order); the others are fixed.

    ``rotation`` (per row, 0..n_folds-1) breaks exact ties between folds, so that the seed matters.
    Works on ``n_folds * count - total`` per fold and feature, which is exact in integers: moving a
    count vector z from fold a to fold b changes the imbalance by ``2n * z . (E_b - E_a + n z)``.
    """
    n = n_folds
    n_primary = primary.shape[1]
    x = np.hstack([primary, secondary]).astype(np.int64)
    folds = folds.astype(np.int64).copy()
    fixed = folds >= 0
    load = np.zeros((n, x.shape[1]), dtype=np.int64)
    np.add.at(load, folds[fixed], x[fixed])
    excess = n * load - x.sum(axis=0)  # E: > 0 where a fold holds more than its share

    new = np.flatnonzero(~fixed)
    fold_ids = np.arange(n)
    for i in new:
        z = x[i]
        delta = z * (2 * excess + n * z)  # imbalance change (times n) of adding z to each fold
        ties = (fold_ids - rotation[i]) % n
        order = np.lexsort((ties, delta[:, n_primary:].sum(axis=1), delta[:, :n_primary].sum(axis=1)))
        best = int(order[0])
        folds[i] = best
        excess[best] += n * z

    for _ in range(MAX_STEPS_PER_GROUP * len(new)):
        step = _best_step(x, n_primary, folds, new, excess, n)
        if step is None:
            break
        i, j, a, b = step  # i (or nothing, -1) leaves a for b; j (or nothing) leaves b for a
        for row, src, dst in ((i, a, b), (j, b, a)):
            if row >= 0:
                folds[row] = dst
                excess[src] -= n * x[row]
                excess[dst] += n * x[row]
    return folds


def _best_step(x, n_primary, folds, new, excess, n):
    """The move or swap of new groups that lowers (primary, secondary) imbalance most, or None.

    Groups in one fold with equal count vectors are interchangeable, so each fold offers one
    representative per distinct vector (the first in placement order), plus 'nothing' (a plain move).
    """
    reps = []
    for f in range(n):
        rows = new[folds[new] == f]
        vectors, first = np.unique(x[rows], axis=0, return_index=True) if len(rows) else (x[:0], rows)
        reps.append((np.vstack([np.zeros((1, x.shape[1]), dtype=np.int64), vectors]),
                     np.concatenate([[-1], rows[first]]).astype(np.int64)))
    best = (0, 0)
    step = None
    for a in range(n):
        xa, ia = reps[a]
        for b in range(a + 1, n):
            xb, ib = reps[b]
            gap = excess[b] - excess[a]
            block = max(1, BLOCK_CELLS // (len(xb) * x.shape[1]))
            for start in range(0, len(xa), block):
                z = xa[start:start + block, None, :] - xb[None, :, :]  # what moves from a to b
                cost = z * (gap + n * z)
                dp = cost[..., :n_primary].sum(axis=-1)
                ds = cost[..., n_primary:].sum(axis=-1)
                low = dp.min()
                if low > best[0]:
                    continue
                at = np.flatnonzero(dp.ravel() == low)
                k = at[np.argmin(ds.ravel()[at])]
                candidate = (int(low), int(ds.ravel()[k]))
                if candidate < best:
                    best = candidate
                    r, c = divmod(int(k), len(xb))
                    step = (int(ia[start + r]), int(ib[c]), a, b)
    return step


def assign_folds(
    videos: pl.DataFrame, previous: dict[str, int] | None = None, n_folds: int = N_FOLDS, seed: int = 0
) -> pl.DataFrame:
    """One row per video: video_id, dup_group, label, platform, fold.

    ``videos`` has video_id, dup_group, label, platform; ``previous`` maps
    video_id -> fold from the last assignment (videos no longer present are ignored).
    """
    previous = previous or {}
    videos = videos.select("video_id", "dup_group", "label", "platform")
    members = defaultdict(list)
    for video_id, group in videos.select("video_id", "dup_group").iter_rows():
        members[group].append(video_id)

    fold_of: dict[str, int] = {}
    for group, ids in members.items():
        earlier = Counter(previous[v] for v in ids if v in previous and 0 <= previous[v] < n_folds)
        if earlier:
            fold_of[group] = min(earlier, key=lambda f: (-earlier[f], f))

    # Larger groups first (they are the hard ones to balance), then in seeded hash order.
    keys = {g: group_order_key(g, seed) for g in members if g not in fold_of}
    new_groups = sorted(keys, key=lambda g: (-len(members[g]), keys[g]))
    if new_groups:
        groups = sorted(fold_of) + new_groups
        primary, secondary = group_counts(videos, groups)
        start = np.array([fold_of[g] for g in groups[:len(fold_of)]] + [-1] * len(new_groups), dtype=np.int64)
        rotation = np.array([0] * len(fold_of) + [int(keys[g][:8], 16) % n_folds for g in new_groups])
        placed = balance(primary, secondary, start, rotation, n_folds)
        fold_of.update(zip(new_groups, placed[len(fold_of):].tolist()))

    return videos.with_columns(
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
