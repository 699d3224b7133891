"""Stage 4 — ``scaled_features``: 8 features per scaled clip."""

import polars as pl

import dagster as dg
from fvc_assets.features.scaled import aggregate_scaled
from fvc_assets.features.results import feature_check_specs, feature_checks, validated_table
from fvc_assets.features.plausible import SCALED_PLAUSIBLE_RANGES
from fvc_assets.partitions import videos_partitions
from fvc_assets.scale.assets import scaled_videos
from fvc_assets.steps.per_video import over_videos
from fvc_assets.steps.sole_writer import sole_writer
from fvc_assets.steps.step_cost import reports_cost
from fvc_assets.steps.upstream import require_upstream, table_version
from fvc_assets.steps.table_metadata import declared_columns, table_metadata
from fvc_assets.features.columns import SCALED_FEATURE_COLUMNS
from fvc_core.step_cost import phase
from fvc_resources.atomic import write_parquet_atomic
from fvc_resources.sampling import FrameSamplingResource
from fvc_resources.storage import StorageResource
from fvc_resources.video import VideoError, probe, sample_frames

SCALED_FEATURES_COMPLETE = "scaled_features_complete"
SCALED_FEATURES_SANE = "scaled_features_sane"


def scaled_clip_features(row: dict, root, count_for) -> dict:
    path = root / row["path"]
    features, used = aggregate_scaled(s.image for s in sample_frames(path, count_for(probe(path).frame_count)))
    return {"clip_id": row["clip_id"], **features, "is_upscaled": row["is_upscaled"],
            "is_downscaled": row["is_downscaled"], "frames_sampled": used}


@dg.asset(
    partitions_def=videos_partitions,
    output_required=False,  # a batch records each video's materialisation itself (steps/per_video.py)
    deps=[scaled_videos],
    group_name="features",
    metadata=declared_columns(SCALED_FEATURE_COLUMNS),
    code_version="1",
    kinds={"parquet"},
    check_specs=feature_check_specs("scaled_features", SCALED_FEATURES_COMPLETE, SCALED_FEATURES_SANE,
                                    "Every scaled clip has exactly one feature row."),
    description="Stage 4: 8 features per scaled clip (mean over sampled frames, plus up/downscale flags).",
)
@over_videos
@sole_writer(lambda storage, c: [storage.scaled_features_path(c.partition_key)])
@reports_cost
def scaled_features(
    context: dg.AssetExecutionContext, storage: StorageResource, sampling: FrameSamplingResource
) -> dg.MaterializeResult:
    key = context.partition_key
    with phase("tables"):
        scaled = pl.read_parquet(require_upstream(storage.scaled_table_path(key), "scaled_videos", key)).to_dicts()
    rows, missing = [], {}
    with phase("kernel"):
        for row in scaled:
            try:
                rows.append(scaled_clip_features(row, storage.root, sampling.count))
            except (VideoError, ValueError) as exc:
                missing[row["clip_id"]] = str(exc)
    with phase("tables"):
        # pandera (with pandas under it, ~130 MB resident) loads when a step validates, not with the code location.
        from fvc_assets.features.schema import ScaledFeatureTable

        table = validated_table(ScaledFeatureTable, rows)
        write_parquet_atomic(storage.scaled_features_path(key), table)
        metadata = table_metadata(table, SCALED_FEATURE_COLUMNS)
    with phase("checks"):
        checks = feature_checks(SCALED_FEATURES_COMPLETE, SCALED_FEATURES_SANE, len(scaled), table, missing,
                                SCALED_PLAUSIBLE_RANGES)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "clips": table.height,
            "output": dg.MetadataValue.path(str(storage.scaled_features_path(key))),
        },
        check_results=checks,
        data_version=table_version(table),
    )
