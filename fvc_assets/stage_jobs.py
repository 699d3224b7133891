"""One job per per-video stage, named after the asset group it runs, for one `videos` partition.

``video_pipeline`` (fvc_assets.jobs) runs all of them in one go; these are for
re-running a single stage from the UI (Jobs page, or "Materialize" on the group).
Stage 5 already has its jobs: ``catalog``, ``train``, ``compare``.
"""

import dagster as dg

# (job name = asset group, what it runs)
STAGES = {
    "ingest": "Probe, hash and label one video (raw_videos).",
    "augment": "Stage 1: the original + 10 augmented clips of one video (augmented_videos).",
    "features": "Stages 2 and 4: forensic features of the clips and of the scaled clips "
                "(handcrafted_features, scaled_features).",
    "scale": "Stage 3: every clip scaled to a 256 px longer side (scaled_videos).",
}

stage_jobs = [
    dg.define_asset_job(name=name, selection=dg.AssetSelection.groups(name), description=description)
    for name, description in STAGES.items()
]
