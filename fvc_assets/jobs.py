"""Jobs a person (or a sensor) launches."""

import dagster as dg

VIDEO_PIPELINE_JOB = "video_pipeline"

# Everything computed per video, for one `videos` partition.
video_pipeline_job = dg.define_asset_job(
    name=VIDEO_PIPELINE_JOB,
    selection=dg.AssetSelection.groups("ingest"),
    description="Per-video assets for one `videos` partition (ingest; later stages join as they land).",
)
