"""Stage 1 — ``augmented_videos``: the original and 10 augmented clips of each video."""

import time

import polars as pl
from pydantic import Field

import dagster as dg
from fvc_assets.augment.clips import CLIP_INDICES, CLIPS_PER_VIDEO, augment_video, clip_id
from fvc_assets.ingest.assets import raw_videos, video_failure
from fvc_assets.ingest.preview import SHEET_THUMBNAIL_BYTES, contact_sheet, markdown_image, thumbnail_jpeg, write_preview
from fvc_assets.partitions import videos_partitions
from fvc_assets.steps.per_video import over_videos
from fvc_assets.steps.sole_writer import sole_writer
from fvc_assets.steps.step_cost import reports_cost
from fvc_assets.steps.upstream import require_upstream, table_version
from fvc_assets.steps.table_metadata import declared_columns, table_metadata
from fvc_assets.augment.columns import CLIP_COLUMNS
from fvc_core.step_cost import phase
from fvc_resources.atomic import write_parquet_atomic
from fvc_resources.storage import StorageResource
from fvc_resources.video import VideoError, probe

CLIPS_COMPLETE = "clips_complete"
SOURCE_DECODED = "source_decoded_whole"


class AugmentConfig(dg.Config):
    global_seed: int = Field(default=0, description="Seeds every augmentation with (video id, index, this).")
    max_frames_per_clip: int | None = Field(default=None, description="Cap on frames per clip; None = whole video.")
    clips_memory_mb: int = Field(
        default=600, ge=1,
        description=("Memory for the clips being encoded: as many clips run side by side as fit (a clip in "
                     "flight holds about 280 MB at 1080p, 165 MB at 720p, 97 MB at 480p: its x264 encoder, "
                     "decoder and frames), at most one per core and at least one. Add the process's own "
                     "~190 MB when sizing slurm/mem."),
    )


def completeness(video_id: str, clips: list[dict], root) -> dg.AssetCheckResult:
    """Exactly 11 clips, each decodes and has frames; names every missing or broken clip."""
    expected = {clip_id(video_id, i) for i in CLIP_INDICES}
    present = {c["clip_id"]: c for c in clips}
    problems: dict[str, str] = {}
    for cid in sorted(expected - set(present)):
        problems.setdefault(cid, "not written")
    for cid, clip in present.items():
        try:
            if probe(root / clip["path"]).frame_count <= 0:
                problems[cid] = "no frames"
        except VideoError as error:
            problems[cid] = error.reason
    return dg.AssetCheckResult(
        check_name=CLIPS_COMPLETE,
        passed=not problems and len(present) == CLIPS_PER_VIDEO,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "clips": len(present),
            "expected": CLIPS_PER_VIDEO,
            "problems": dg.MetadataValue.json(problems),
        },
    )


def source_decoded(announced: int, decoded: int, max_frames: int | None) -> dg.AssetCheckResult:
    """Did the original clip get every frame the container announces? A cut-off upload decodes
    only its first part: processed, but said (WARN), not passed off as whole."""
    expected = announced if max_frames is None else min(announced, max_frames)
    return dg.AssetCheckResult(
        check_name=SOURCE_DECODED,
        passed=announced <= 0 or decoded >= expected,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "frames_announced": announced,
            "frames_decoded": decoded,
            "note": "" if decoded >= expected else
            f"decoded {decoded} of the {announced} frames the container announces; the file may be truncated",
        },
    )


@dg.asset(
    partitions_def=videos_partitions,
    output_required=False,  # a batch records each video's materialisation itself (steps/per_video.py)
    deps=[raw_videos],
    group_name="augment",
    metadata=declared_columns(CLIP_COLUMNS),
    code_version="2",
    kinds={"video", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            CLIPS_COMPLETE,
            partitions_def=videos_partitions,
            asset="augmented_videos",
            blocking=True,
            description="Exactly 11 clips (original + 10 augmentations), each decodes and has frames.",
        ),
        dg.AssetCheckSpec(
            SOURCE_DECODED,
            partitions_def=videos_partitions,
            asset="augmented_videos",
            description="The original clip holds every frame the source's container announces (else truncated).",
        ),
    ],
    description=(
        "Stage 1: the original and 10 deterministic augmentations of each video, as H.264 clips, "
        "and the clip table (clip -> source video lineage)."
    ),
)
@over_videos
@sole_writer(lambda storage, c: [storage.clips_dir(c.partition_key), storage.clip_table_path(c.partition_key),
                    storage.contact_sheet_path(c.partition_key)])
@reports_cost
def augmented_videos(
    context: dg.AssetExecutionContext, config: AugmentConfig, storage: StorageResource
) -> dg.MaterializeResult:
    key = context.partition_key
    with phase("tables"):
        raw = pl.read_parquet(require_upstream(storage.raw_video_path(key), "raw_videos", key)).row(0, named=True)
    started = time.perf_counter()
    previews: dict = {}
    try:
        with phase("kernel"):
            rows = augment_video(
                raw["path"],
                storage.clips_dir(key),
                video_id=key,
                label=raw["label"],
                dup_group=raw["dup_group"],
                fps=raw["fps"],
                global_seed=config.global_seed,
                max_frames=config.max_frames_per_clip,
                memory_mb=config.clips_memory_mb,
                path_root=storage.root,
                log=context.log.info,
                previews=previews,
            )
    except VideoError as error:
        raise video_failure(error) from error
    seconds = time.perf_counter() - started
    original = next(r for r in rows if r["augmentation"] == "original")
    # pandera (with pandas under it, ~130 MB resident) loads when a step validates, not with the code location.
    with phase("tables"):
        from fvc_assets.augment.schema import ClipTable

        table = ClipTable.validate(pl.DataFrame(rows, schema_overrides={"augmentation_idx": pl.Int64}))
        write_parquet_atomic(storage.clip_table_path(key), table)
        metadata = table_metadata(table, CLIP_COLUMNS)
    with phase("previews"):
        # Each clip's middle frame, kept while it was written: no clip is decoded again for the sheet.
        sheet = contact_sheet([previews[r["augmentation_idx"]] for r in rows], [r["augmentation"] for r in rows])
        write_preview(storage.contact_sheet_path(key), sheet, max_side=640)
        thumbnail = thumbnail_jpeg(sheet, 640, SHEET_THUMBNAIL_BYTES)
    with phase("checks"):
        checks = [completeness(key, rows, storage.root),
                  source_decoded(raw["frame_count"] or 0, original["frames"], config.max_frames_per_clip)]
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "clips": len(rows),
            "frames_written": int(table["frames"].sum()),
            "frames_per_second": round(float(table["frames"].sum()) / max(seconds, 1e-9), 1),
            "clip_table": dg.MetadataValue.path(str(storage.clip_table_path(key))),
            "contact_sheet_path": dg.MetadataValue.path(str(storage.contact_sheet_path(key))),
            "contact_sheet": dg.MetadataValue.md(markdown_image(thumbnail, f"{key} clips")),
        },
        check_results=checks,
        data_version=table_version(table),
    )
