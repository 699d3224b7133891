"""``raw_videos``: one partition per registered video, with its probe, labels and group."""


import polars as pl

import dagster as dg
from fvc_assets.ingest.describe import describe_video, video_identity
from fvc_assets.ingest.manifest import Manifest, find_manifests, read_manifest
from fvc_assets.ingest.preview import PREVIEW_THUMBNAIL_BYTES, markdown_image, thumbnail_jpeg, write_preview
from fvc_assets.ingest.registration import (
    Registration,
    changed_since_registered,
    load_registration,
    registrations_with_content,
)
from fvc_assets.partitions import videos_partitions
from fvc_assets.steps.per_video import over_videos
from fvc_assets.steps.sole_writer import sole_writer
from fvc_assets.steps.step_cost import reports_cost
from fvc_core.step_cost import phase
from fvc_assets.steps.upstream import table_version
from fvc_assets.steps.table_metadata import declared_columns, table_metadata
from fvc_assets.ingest.columns import RAW_VIDEO_COLUMNS
from fvc_resources.atomic import write_parquet_atomic
from fvc_resources.storage import StorageResource
from fvc_resources.video import VideoError
from fvc_resources.video_resource import VideoResource


# (metadata name, raw_video.parquet column) of the probe's facts
PROBE_FACTS = (("container", "container"), ("codec", "codec"), ("pix_fmt", "pix_fmt"), ("width", "width"),
               ("height", "height"), ("fps", "fps"), ("frame_count", "frame_count"), ("duration_s", "duration"),
               ("bitrate", "bitrate"), ("rotation", "rotation"))


def video_failure(error: VideoError) -> dg.Failure:
    """A step failure that names the file and the reason, in the UI and in ``fvc run``'s summary."""
    return dg.Failure(
        description=str(error),
        metadata={"path": dg.MetadataValue.path(error.path), "reason": error.reason},
    )


def identify_video(storage: StorageResource, key: str) -> tuple[Registration, list[Manifest], dict]:
    """What ``raw_videos`` knows of a video before decoding it: its registry record, the inbox's manifests,
    and its label, cascades, platform and dup_group. Fails the step when the record is missing or the
    file no longer holds the registered content.

    Its own record and those of identical files are read, never the whole registry: the cost of a
    video's step must not grow with the corpus. Its dup_group is therefore the one its manifests and
    identical files give; ``video_catalog`` recomputes every group over all videos, and folds use that.
    """
    registration = load_registration(storage.registry_dir, key)
    if registration is None:
        raise dg.Failure(description=f"video {key!r} has no registry record in {storage.registry_dir}")
    changed = changed_since_registered(registration)
    if changed:  # never describe new content under the old key
        raise video_failure(VideoError(registration.path, changed))
    manifests = [read_manifest(p) for p in find_manifests(storage.inbox_dir)]
    identical = {**registrations_with_content(storage.registry_dir, registration.sha256), key: registration}
    return registration, manifests, video_identity(registration, manifests, identical)


@dg.asset(
    partitions_def=videos_partitions,
    output_required=False,  # a batch records each video's materialisation itself (steps/per_video.py)
    group_name="ingest",
    metadata=declared_columns(RAW_VIDEO_COLUMNS),
    code_version="1",
    kinds={"video", "parquet"},
    description=(
        "One video from the inbox: container and codec facts (probe), content hash, label "
        "(manifest, else real/ or fake/ folder, else unknown), FVC cascade, platform and dup_group (from its "
        "manifests and identical files; video_catalog recomputes groups over all videos)."
    ),
)
@over_videos
@sole_writer(lambda storage, c: [storage.raw_video_path(c.partition_key), storage.preview_path(c.partition_key)])
@reports_cost
def raw_videos(
    context: dg.AssetExecutionContext, storage: StorageResource, video: VideoResource
) -> dg.MaterializeResult:
    key = context.partition_key
    registration, manifests, identity = identify_video(storage, key)
    try:
        with phase("kernel"):  # probe and hash (the probe's own time shows as probing)
            row = describe_video(registration, identity)
        with phase("previews"):
            middle = next(iter(video.sample_frames(registration.path, 1)), None)
    except VideoError as error:
        raise video_failure(error) from error

    with phase("tables"):
        if set(row) != set(RAW_VIDEO_COLUMNS):  # the row and the declared columns must move together
            raise ValueError(f"raw_videos row columns {sorted(set(row) ^ set(RAW_VIDEO_COLUMNS))} differ from "
                             "RAW_VIDEO_COLUMNS (fvc_assets/ingest/columns.py)")
        table = pl.DataFrame([row], schema=RAW_VIDEO_COLUMNS)
        write_parquet_atomic(storage.raw_video_path(key), table)
    problems = [p for m in manifests for p in m.problems]
    for problem in problems:
        context.log.info(problem)
    metadata = {
        **table_metadata(table, RAW_VIDEO_COLUMNS),
        "path": dg.MetadataValue.path(registration.path),
        "sha256": registration.sha256,
        # What the probe found, as one entry: each metadata entry costs the event log ~100 bytes beside its value.
        "probe": {name: row[column] for name, column in PROBE_FACTS},
        "label": row["label"],
        "label_source": row["label_source"],
        "cascade_ids": ", ".join(row["cascade_ids"]) or "-",
        "platform": row["platform"],
        "dup_group": row["dup_group"],
        "output": dg.MetadataValue.path(str(storage.raw_video_path(key))),
    }
    if row["label_note"]:
        metadata["label_note"] = row["label_note"]
    if row["manipulation"]:
        metadata["manipulation"] = row["manipulation"]
    if problems:
        metadata["manifest_problems"] = dg.MetadataValue.md("\n".join(f"- {p}" for p in problems))
    if middle is not None:
        with phase("previews"):
            write_preview(storage.preview_path(key), middle.image)
            thumbnail = thumbnail_jpeg(middle.image, 160, PREVIEW_THUMBNAIL_BYTES)
        metadata["preview"] = dg.MetadataValue.md(markdown_image(thumbnail, key))
        metadata["preview_path"] = dg.MetadataValue.path(str(storage.preview_path(key)))
    return dg.MaterializeResult(metadata=metadata, data_version=table_version(table))
