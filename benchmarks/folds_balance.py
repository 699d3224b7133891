"""Fold balance and stability on the real FVC manifests: assign_folds against StratifiedGroupKFold.

    .venv/bin/python -m benchmarks.folds_balance

The videos are the real/fake videos of FVC + FVC_dup with their dup_groups, built as ingest builds them
(``fvc_videos``; needs ``../shared/fvc-corpus``). Measured side by side:
  first     every group new: fold sizes, their CV and std, the std of the fake share across folds,
            and the std of each platform's share (secondary)
  +10 %     assign 90 % of the groups (hash order), then all with the first as ``previous``:
            videos moved, and the balance after; SGKF re-splits from scratch, and moves videos
            (counted after matching its fold numbers to the earlier ones as well as possible)
  splits    the same over 20 different 90/10 splits: median and worst balance after adding
"""

from __future__ import annotations

import hashlib
import itertools
import time
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.model_selection import StratifiedGroupKFold

from benchmarks._measure import REPO_ROOT, print_table
from fvc_assets.train.folds import assign_folds
from fvc_assets.ingest.describe import all_rows, group_index, platform_of, resolve_label
from fvc_assets.ingest.manifest import RowIndex, read_manifest
from fvc_assets.ingest.registration import Registration
from fvc_assets.train.catalog import trainable

CORPUS_DIR = REPO_ROOT.parent / "shared" / "fvc-corpus"
PLATFORMS = ("youtube", "facebook", "twitter")


def fvc_videos(corpus_dir: Path) -> pl.DataFrame:
    """The real/fake videos of FVC + FVC_dup as the platform sees them when each manifest URL has its local
    file (named by platform id): label, platform and dup_group from the ingest code, one row per video."""
    manifests = [read_manifest(corpus_dir / name) for name in ("FVC.csv", "FVC_dup.csv")]
    index = RowIndex(all_rows(manifests))
    ids = dict.fromkeys(r.platform_id for r in all_rows(manifests) if r.platform_id)
    registry = {pid: Registration(key=pid, path=f"/inbox/fvc/{pid}.mp4", relpath=f"fvc/{pid}.mp4",
                                  sha256=f"content-of-{pid}", size_bytes=1, registered_at=0.0) for pid in ids}
    groups = group_index(registry, manifests, index)
    rows = []
    for key, registration in registry.items():
        matched = index.rows_for_file(registration.path)
        rows.append({"video_id": key, "dup_group": groups[key], "platform": platform_of(matched),
                     "label": resolve_label(matched, registration.relpath).label})
    return trainable(pl.DataFrame(rows))


def sgkf_folds(videos: pl.DataFrame, n_folds: int = 5) -> pl.DataFrame:
    labels = videos["label"].to_numpy()
    fold = np.full(videos.height, -1)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=0)
    for k, (_, held_out) in enumerate(splitter.split(np.zeros(videos.height), labels, videos["dup_group"].to_numpy())):
        fold[held_out] = k
    return videos.with_columns(pl.Series("fold", fold))


def spread(folds: pl.DataFrame) -> tuple[list[int], float, float]:
    """(videos per fold, std of those sizes, std of the fake share across folds)."""
    per_fold = folds.group_by("fold").agg(pl.len(), (pl.col("label") == "fake").mean().alias("fake")).sort("fold")
    return per_fold["len"].to_list(), float(per_fold["len"].std(ddof=0)), float(per_fold["fake"].std(ddof=0))


def split_groups(videos: pl.DataFrame, salt: str) -> pl.DataFrame:
    order = sorted(videos["dup_group"].unique().to_list(),
                   key=lambda g: hashlib.sha256(f"{salt}:{g}".encode()).digest())
    return videos.filter(pl.col("dup_group").is_in(order[: round(0.9 * len(order))]))


def moved(before: pl.DataFrame, after: pl.DataFrame, relabel: bool) -> int:
    old = dict(before.select("video_id", "fold").iter_rows())
    pairs = [(old[v], f) for v, f in after.select("video_id", "fold").iter_rows() if v in old]
    if not relabel:
        return sum(a != b for a, b in pairs)
    return min(sum(p[a] != b for a, b in pairs) for p in itertools.permutations(range(5)))


def row(name: str, folds: pl.DataFrame, seconds: float | None = None, moves: str = "") -> list:
    sizes, size_std, share_std = spread(folds)
    platform = max(float(folds.group_by("fold").agg((pl.col("platform") == p).mean())["platform"].std(ddof=0))
                   for p in PLATFORMS)
    return [name, " / ".join(map(str, sizes)), f"{size_std / np.mean(sizes):.4f}", f"{size_std:.2f}",
            f"{share_std:.4f}", f"{platform:.4f}", moves, "" if seconds is None else f"{seconds * 1000:.0f}"]


def timed(fn, repeat: int = 5) -> tuple[pl.DataFrame, float]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def main() -> None:
    if not (CORPUS_DIR / "FVC.csv").exists():
        print(f"FVC manifests not found at {CORPUS_DIR}")
        return
    videos = fvc_videos(CORPUS_DIR)
    print(f"{videos.height} real/fake videos in {videos['dup_group'].n_unique()} groups")
    ours, seconds = timed(lambda: assign_folds(videos))
    sgkf, sgkf_seconds = timed(lambda: sgkf_folds(videos))

    earlier = split_groups(videos, "later")
    before = assign_folds(earlier)
    previous = dict(before.select("video_id", "fold").iter_rows())
    after, after_seconds = timed(lambda: assign_folds(videos, previous))
    sgkf_before = sgkf_folds(earlier)
    headers = ["split", "videos per fold", "size CV", "size std", "fake share std", "platform share std",
               "moved", "ms"]
    print_table(headers, [
        row("assign_folds, first", ours, seconds),
        row("SGKF, first", sgkf, sgkf_seconds),
        row(f"assign_folds, 90 % ({earlier.height} videos)", before),
        row("SGKF, 90 %", sgkf_before),
        row("assign_folds, +10 %", after, after_seconds, f"{moved(before, after, False)} of {before.height}"),
        row("SGKF re-split, +10 %", sgkf, None,
            f"{moved(sgkf_before, sgkf, False)} ({moved(sgkf_before, sgkf, True)} matched) of {before.height}"),
    ])

    cvs, shares, moves = [], [], 0
    for salt in range(20):
        part = assign_folds(split_groups(videos, f"split{salt}"))
        whole = assign_folds(videos, dict(part.select("video_id", "fold").iter_rows()))
        sizes, size_std, share_std = spread(whole)
        cvs.append(size_std / np.mean(sizes))
        shares.append(share_std)
        moves += moved(part, whole, False)
    print(f"\n20 splits of 90 % + 10 %: size CV median {np.median(cvs):.4f} worst {max(cvs):.4f}; "
          f"fake share std median {np.median(shares):.4f} worst {max(shares):.4f}; videos moved {moves}")


if __name__ == "__main__":
    main()
