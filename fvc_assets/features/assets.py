"""Stage 2 — ``handcrafted_features``: 15 forensic features per clip."""

import polars as pl

import dagster as dg
from fvc_assets.augment.assets import augmented_videos
from fvc_assets.features.extract import video_features
from fvc_assets.features.results import feature_check_specs, feature_checks, validated_table
from fvc_assets.features.plausible import PLAUSIBLE_RANGES
from fvc_assets.partitions import videos_partitions
from fvc_assets.steps.per_video import over_videos
from fvc_assets.steps.sole_writer import sole_writer
from fvc_assets.steps.step_cost import reports_cost
from fvc_assets.steps.upstream import require_upstream, table_version
from fvc_assets.steps.table_metadata import declared_columns, table_metadata
from fvc_assets.features.columns import HANDCRAFTED_COLUMNS
from fvc_core.step_cost import phase
from fvc_resources.atomic import write_parquet_atomic
from fvc_resources.sampling import FrameSamplingResource
from fvc_resources.storage import StorageResource

FEATURES_COMPLETE = "features_complete"
FEATURES_SANE = "features_sane"


@dg.asset(
    partitions_def=videos_partitions,
    output_required=False,  # a batch records each video's materialisation itself (steps/per_video.py)
    deps=[augmented_videos],
    group_name="features",
    metadata=declared_columns(HANDCRAFTED_COLUMNS),
    code_version="3",  # 3: the original's features from the uploaded file
    kinds={"parquet"},
    check_specs=feature_check_specs("handcrafted_features", FEATURES_COMPLETE, FEATURES_SANE,
                                    "Every clip of the clip table has exactly one feature row."),
    description=("Stage 2: 15 handcrafted forensic features per clip (mean over sampled frames). The original's "
                 "come from the uploaded file itself (its codec history), the augmented clips' from the clips; "
                 "`features_from` / `features_path` say which file each row describes."),
)
@over_videos
@sole_writer(lambda storage, c: [storage.handcrafted_features_path(c.partition_key)])
@reports_cost
def handcrafted_features(
    context: dg.AssetExecutionContext, storage: StorageResource, sampling: FrameSamplingResource
) -> dg.MaterializeResult:
    key = context.partition_key
    with phase("tables"):
        clips = pl.read_parquet(require_upstream(storage.clip_table_path(key), "augmented_videos", key)).to_dicts()
        source = pl.read_parquet(require_upstream(storage.raw_video_path(key), "raw_videos", key))["path"][0]
    with phase("kernel"):
        rows, missing = video_features(clips, storage.root, sampling.count, source)
    with phase("tables"):
        # pandera (with pandas under it, ~130 MB resident) loads when a step validates, not with the code location.
        from fvc_assets.features.schema import HandcraftedFeatureTable

        table = validated_table(HandcraftedFeatureTable, rows)
        write_parquet_atomic(storage.handcrafted_features_path(key), table)
        metadata = table_metadata(table, HANDCRAFTED_COLUMNS)
    with phase("checks"):
        checks = feature_checks(FEATURES_COMPLETE, FEATURES_SANE, len(clips), table, missing, PLAUSIBLE_RANGES)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "clips": table.height,
            "frames_sampled": int(table["frames_sampled"].sum()) if table.height else 0,
            "output": dg.MetadataValue.path(str(storage.handcrafted_features_path(key))),
        },
        check_results=checks,
        data_version=table_version(table),
    )
