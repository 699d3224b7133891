"""The video catalog as pure code: one row per clip, with labels, groups, lineage and all 23 features.

Labels and ``dup_group`` are recomputed here over *all* registered videos and
all manifests present now, because a video's ``raw_videos`` row only knew the
manifests and videos that existed when it ran; folds must use the global view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from fvc_assets.features.handcrafted import HANDCRAFTED_FEATURES
from fvc_assets.features.scaled import SCALED_FEATURES
from fvc_assets.ingest.describe import all_rows, group_index, manipulation_of, platform_of, resolve_label
from fvc_assets.ingest.manifest import Manifest, RowIndex
from fvc_assets.ingest.registration import Registration

FEATURE_COLUMNS: tuple[str, ...] = HANDCRAFTED_FEATURES + SCALED_FEATURES
TRAINABLE_LABELS = ("real", "fake")
# Source-video facts carried into the catalog for slicing results.
SOURCE_COLUMNS = ("codec", "container", "width", "height", "fps", "duration", "bitrate")


@dataclass(frozen=True)
class VideoTables:
    """The per-video parquet files one video partition wrote (paths; missing ones are None)."""

    key: str
    raw_video: Path | None
    clips: Path | None
    handcrafted: Path | None
    scaled: Path | None
    scaled_features: Path | None

    def missing(self) -> list[str]:
        names = {
            "raw_videos": self.raw_video,
            "augmented_videos": self.clips,
            "handcrafted_features": self.handcrafted,
            "scaled_videos": self.scaled,
            "scaled_features": self.scaled_features,
        }
        return [name for name, path in names.items() if path is None or not path.exists()]


@dataclass
class Catalog:
    table: pl.DataFrame
    incomplete: dict[str, list[str]] = field(default_factory=dict)  # video -> stages not materialised


def video_labels_and_groups(
    registry: dict[str, Registration], manifests: list[Manifest]
) -> pl.DataFrame:
    """video_id, label, label_source, label_note, dup_group, platform, cascade_ids, manipulation: the
    global view."""
    rows = RowIndex(all_rows(manifests))
    groups = group_index(registry, manifests, rows)
    out = []
    for key, registration in sorted(registry.items()):
        mine = rows.rows_for_file(registration.path)
        label = resolve_label(mine, registration.relpath)
        out.append({
            "video_id": key,
            "label": label.label,
            "label_source": label.source,
            "label_note": label.note,
            "dup_group": groups[key],
            "platform": platform_of(mine),
            "cascade_ids": ",".join(sorted({r.cascade_id for r in mine})),
            "manipulation": manipulation_of(mine),
        })
    schema = {c: pl.String for c in ("video_id", "label", "label_source", "label_note", "dup_group", "platform",
                                     "cascade_ids", "manipulation")}
    return pl.DataFrame(out, schema=schema)


def _video_clip_rows(tables: VideoTables, root: Path) -> pl.DataFrame:
    raw = pl.read_parquet(tables.raw_video).select("video_id", *SOURCE_COLUMNS)
    raw = raw.rename({c: f"source_{c}" for c in SOURCE_COLUMNS})
    clips = pl.read_parquet(tables.clips).select(
        "clip_id", "video_id", "augmentation_idx", "augmentation", "params",
        pl.col("path").alias("clip_path"), pl.col("frames").alias("clip_frames"),
    )
    handcrafted = pl.read_parquet(tables.handcrafted).rename({"frames_sampled": "frames_sampled_handcrafted"})
    scaled = pl.read_parquet(tables.scaled).select(
        "clip_id", "method", "fallback", pl.col("path").alias("scaled_path"),
        "scaled_width", "scaled_height",
    )
    scaled_features = pl.read_parquet(tables.scaled_features).rename({"frames_sampled": "frames_sampled_scaled"})
    return (
        clips.join(raw, on="video_id", how="left")
        .join(handcrafted, on="clip_id", how="inner")
        .join(scaled, on="clip_id", how="inner")
        .join(scaled_features, on="clip_id", how="inner")
    )


def build_catalog(
    videos: list[VideoTables], registry: dict[str, Registration], manifests: list[Manifest], root: Path
) -> Catalog:
    """Join every complete video's stage outputs; videos with a stage missing are listed, not joined."""
    incomplete = {v.key: v.missing() for v in videos if v.missing()}
    parts = [_video_clip_rows(v, root) for v in videos if v.key not in incomplete]
    labels = video_labels_and_groups(registry, manifests)
    if parts:
        clips = pl.concat(parts, how="vertical_relaxed")
    else:
        clips = pl.DataFrame(schema={"clip_id": pl.String, "video_id": pl.String})
    table = clips.join(labels, on="video_id", how="left")
    feature_casts = [pl.col(c).cast(pl.Float64) for c in FEATURE_COLUMNS if c in table.columns]
    table = table.with_columns(feature_casts).sort("video_id", "augmentation_idx") if parts else table
    return Catalog(table=table, incomplete=incomplete)


def trainable(table: pl.DataFrame) -> pl.DataFrame:
    """Clips whose video carries a real/fake label (uncertain, debunked, parody, unknown stay out)."""
    return table.filter(pl.col("label").is_in(TRAINABLE_LABELS))
