"""Jobs a person (or a sensor) launches: the per-video pipeline, one job per per-video stage, and stage 5's."""

import dagster as dg

VIDEO_PIPELINE_JOB = "video_pipeline"
PER_VIDEO_GROUPS = ("ingest", "augment", "features", "scale")

# Everything computed per video, for one `videos` partition.
video_pipeline_job = dg.define_asset_job(
    name=VIDEO_PIPELINE_JOB,
    selection=dg.AssetSelection.groups(*PER_VIDEO_GROUPS),
    description="Per-video assets for one `videos` partition (ingest, stages 1-4: augmentation, features, scaling, scaled features).",
)

# One job per per-video stage, named after the asset group it runs, for one `videos` partition:
# for re-running a single stage from the UI (Jobs page, or "Materialize" on the group).
# `video_pipeline` runs all of them in one go. (job name = asset group, what it runs)
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

TRAIN_JOB = "train"
# One model x fold partition: train, score the held-out fold, record it.
train_job = dg.define_asset_job(
    name=TRAIN_JOB,
    # The all-partitions completeness check belongs to the comparison run, not to each fold's run.
    selection=dg.AssetSelection.assets("fold_results")
    - dg.AssetSelection.checks(dg.AssetCheckKey(dg.AssetKey("fold_results"), "all_models_and_folds_present")),
    description="Stage 5 for one base model x fold partition: train on four folds, score the fifth, record in MLflow.",
)

CATALOG_JOB = "catalog"
# The catalog of every clip and the folds over it (with the leakage check), before any training.
catalog_job = dg.define_asset_job(
    name=CATALOG_JOB,
    selection=dg.AssetSelection.assets("video_catalog", "folds"),
    description="Stage 5 inputs: rebuild the clip catalog (and DuckDB views) and the leak-free folds.",
)

ENSEMBLE_JOB = "ensemble"
# The ensemble of one fold: a stacker over every base model's held-out scores.
ensemble_job = dg.define_asset_job(
    name=ENSEMBLE_JOB,
    selection=dg.AssetSelection.assets("ensemble_results"),
    description="Stage 5 ensemble for one fold, over the base models' held-out scores (after every fold_results).",
)

COMPARE_JOB = "compare"
compare_job = dg.define_asset_job(
    name=COMPARE_JOB,
    selection=dg.AssetSelection.assets("model_comparison", "cross_manipulation")
    | dg.AssetSelection.checks(dg.AssetCheckKey(dg.AssetKey("fold_results"), "all_models_and_folds_present")),
    description="Check every model x fold is present, then compare the models (tables, plots, best model) and "
                "judge them on manipulation families they never trained on (cross_manipulation).",
)

PROMOTE_JOB = "promote"
promote_job = dg.define_asset_job(
    name=PROMOTE_JOB,
    selection=dg.AssetSelection.assets("deployed_model", "champion_model"),
    description="Package the comparison's pick and register it (deployed_model); if it passes the gate "
                "(beats the shuffled-label control, and the champion on the same folds), make it the champion.",
)

# The stage jobs that together run what a per-video job runs: `fvc run` runs a batch of videos through
# them one after another, each as one run over a range of videos. (A range run of `video_pipeline`
# itself would skip every step after the first: a batch records each video's materialisation itself
# and yields no step output for Dagster to pass on; fvc_assets/steps/per_video.py.)
BATCH_STAGES = {VIDEO_PIPELINE_JOB: ("ingest", "augment", "scale", "features")}  # in the asset graph's order

# What `fvc run` brings up to date, per video and then (unless --skip-training) stage 5;
# it runs them in the asset graph's order (fvc_assets.launch.plan), not in this one.
PER_VIDEO_JOBS = (VIDEO_PIPELINE_JOB,)
STAGE5_JOBS = (CATALOG_JOB, TRAIN_JOB, ENSEMBLE_JOB, COMPARE_JOB, PROMOTE_JOB)
