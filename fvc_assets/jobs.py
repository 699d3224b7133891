"""Jobs a person (or a sensor) launches."""

import dagster as dg

VIDEO_PIPELINE_JOB = "video_pipeline"
PER_VIDEO_GROUPS = ("ingest", "augment", "features", "scale")

# Everything computed per video, for one `videos` partition.
video_pipeline_job = dg.define_asset_job(
    name=VIDEO_PIPELINE_JOB,
    selection=dg.AssetSelection.groups(*PER_VIDEO_GROUPS),
    description="Per-video assets for one `videos` partition (ingest, stages 1-4: augmentation, features, scaling, scaled features).",
)
