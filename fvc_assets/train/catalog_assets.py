"""Stage 5 input — ``video_catalog``: every clip of every complete video, with labels, groups and all features."""

import polars as pl

import dagster as dg
from fvc_assets.augment.assets import augmented_videos
from fvc_assets.features.assets import handcrafted_features
from fvc_assets.features.scaled_assets import scaled_features
from fvc_assets.ingest.assets import raw_videos
from fvc_assets.ingest.manifest import find_manifests, read_manifest
from fvc_assets.ingest.registration import load_registry
from fvc_assets.scale.assets import scaled_videos
from fvc_assets.steps.sole_writer import sole_writer
from fvc_assets.train.catalog import FEATURE_COLUMNS, VideoTables, build_catalog, trainable
from fvc_assets.train.comparison import markdown
from fvc_assets.steps.upstream import files_version
from fvc_assets.steps.table_metadata import table_metadata
from fvc_resources.atomic import write_parquet_atomic
from fvc_resources.duckdb_views import refresh_views
from fvc_resources.storage import StorageResource

CATALOG_COMPLETE = "catalog_complete"
CATALOG_SANE = "catalog_sane"


def video_tables(storage: StorageResource, key: str) -> VideoTables:
    return VideoTables(
        key=key,
        raw_video=storage.raw_video_path(key),
        clips=storage.clip_table_path(key),
        handcrafted=storage.handcrafted_features_path(key),
        scaled=storage.scaled_table_path(key),
        scaled_features=storage.scaled_features_path(key),
    )


def catalog_problems(table: pl.DataFrame) -> dict[str, list[str]]:
    """{clip or video: [problems]}: non-finite features, duplicate clips, trainable videos without an original."""
    problems: dict[str, list[str]] = {}
    for column in FEATURE_COLUMNS:
        for clip in table.filter(~pl.col(column).is_finite().fill_null(False))["clip_id"].to_list():
            problems.setdefault(clip, []).append(f"{column} is not finite")
    for clip in table.filter(pl.col("clip_id").is_duplicated())["clip_id"].unique().to_list():
        problems.setdefault(clip, []).append("clip listed twice")
    originals = trainable(table).group_by("video_id").agg((pl.col("augmentation") == "original").sum().alias("n"))
    for video in originals.filter(pl.col("n") != 1)["video_id"].to_list():
        problems.setdefault(video, []).append("not exactly one original clip")
    return problems


@dg.asset(
    deps=[raw_videos, augmented_videos, handcrafted_features, scaled_videos, scaled_features],
    group_name="train",
    code_version="1",
    kinds={"parquet", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec(CATALOG_COMPLETE, asset="video_catalog",
                          description="Every registered video has all stage 1-4 outputs (WARN: names the others)."),
        dg.AssetCheckSpec(CATALOG_SANE, asset="video_catalog", blocking=True,
                          description="Features finite, clips unique, one original clip per labelled video."),
    ],
    description=(
        "One row per clip of every video whose stages 1-4 are complete: labels and dup_group recomputed over "
        "all manifests and videos, lineage, and the 15 + 8 features. DuckDB view `clips` in fvc.duckdb."
    ),
)
@sole_writer(lambda storage, c: [storage.catalog_path])
def video_catalog(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    registry = load_registry(storage.registry_dir)
    manifests = [read_manifest(p) for p in find_manifests(storage.inbox_dir)]
    catalog = build_catalog([video_tables(storage, k) for k in sorted(registry)], registry, manifests,
                            storage.root)
    table = catalog.table
    write_parquet_atomic(storage.catalog_path, table)
    refresh_views(storage.root, storage.duckdb_path)
    videos = table.unique("video_id") if table.height else table
    labels = videos.group_by("label").len().sort("label") if table.height else pl.DataFrame()
    problems = catalog_problems(table) if table.height else {}
    for key, stages in catalog.incomplete.items():
        context.log.warning(f"video {key} left out of the catalog: missing {', '.join(stages)}")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(table),
            "clips": table.height,
            "videos": videos.height,
            "trainable_videos": trainable(videos).height if table.height else 0,
            "labels": dg.MetadataValue.md(markdown(labels)) if labels.height else "none",
            "left_out": dg.MetadataValue.json(catalog.incomplete),
            "output": dg.MetadataValue.path(str(storage.catalog_path)),
            "duckdb": dg.MetadataValue.path(str(storage.duckdb_path)),
        },
        # A hash of the table: refreshing an unchanged catalog is no new data for what follows.
        data_version=dg.DataVersion(files_version(storage.catalog_path)),
        check_results=[
            dg.AssetCheckResult(
                check_name=CATALOG_COMPLETE, passed=not catalog.incomplete, severity=dg.AssetCheckSeverity.WARN,
                metadata={"registered": len(registry), "in_catalog": videos.height,
                          "missing_stages": dg.MetadataValue.json(catalog.incomplete)},
            ),
            dg.AssetCheckResult(
                check_name=CATALOG_SANE, passed=not problems and table.height > 0,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"clips": table.height, "problems": dg.MetadataValue.json(problems)},
            ),
        ],
    )
