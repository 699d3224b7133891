"""The one Dagster entry point: ``dagster dev`` / ``dagster definitions validate`` load ``defs``.

Every environment variable the platform reads is read in ``fvc_assets.deployment``.

Heavy libraries (torch, diffusers, timm) are imported inside the functions
that use them, so this module loads fast for every step, sensor tick and UI.
"""

import dagster as dg
from fvc_assets import deployment
from fvc_assets.augment.assets import augmented_videos
from fvc_assets.automation import AUTOMATED_ASSETS, stage5_automation_sensor, with_automation
from fvc_assets.features.assets import handcrafted_features
from fvc_assets.features.scaled_assets import scaled_features
from fvc_assets.ingest.assets import raw_videos
from fvc_assets.ingest.batch_stages import batch_stages_sensor
from fvc_assets.ingest.sensors import inbox_sensor_factory
from fvc_assets.scale.assets import scaled_videos
from fvc_assets.jobs import (BATCH_STAGES, VIDEO_PIPELINE_JOB, catalog_job, compare_job, ensemble_job, promote_job, stage_jobs,
                             train_job, video_pipeline_job)
from fvc_assets.partitions import ENSEMBLE, MODELS
from fvc_assets.promote.assets import beats_control_and_champion, champion_model, deployed_model
from fvc_assets.train.catalog_assets import video_catalog
from fvc_assets.train.folds_assets import folds
from fvc_assets.train.comparison_assets import model_comparison
from fvc_assets.train.cross_manipulation_assets import cross_manipulation
from fvc_assets.train.training_assets import all_models_and_folds_present, ensemble_results, fold_results
from fvc_resources.slurm.executor import fvc_executor_with_default

# The ensemble is an asset of its own only when it is one of the configured models (FVC_MODELS).
WITH_ENSEMBLE = ENSEMBLE in MODELS

defs = dg.Definitions(
    # Stage 5 refreshes by declarative automation once new videos' runs settle (fvc_assets.automation).
    assets=with_automation([
        raw_videos, augmented_videos, handcrafted_features, scaled_videos, scaled_features,
        video_catalog, folds, fold_results, *([ensemble_results] if WITH_ENSEMBLE else []), model_comparison,
        cross_manipulation, deployed_model, champion_model,
    ]),
    asset_checks=[all_models_and_folds_present, beats_control_and_champion],
    # In-process unless the deployment says otherwise (FVC_EXECUTOR); any run may choose in its run config.
    executor=fvc_executor_with_default(deployment.executor_backend()),
    jobs=[video_pipeline_job, catalog_job, train_job, *([ensemble_job] if WITH_ENSEMBLE else []), compare_job,
          promote_job, *stage_jobs],
    sensors=[
        inbox_sensor_factory(video_pipeline_job, stage_jobs, BATCH_STAGES[VIDEO_PIPELINE_JOB]),
        batch_stages_sensor(stage_jobs),
        stage5_automation_sensor(tuple(a for a in AUTOMATED_ASSETS if WITH_ENSEMBLE or a != "ensemble_results")),
    ],
    # Resource config from the deployment's environment (dg.EnvVar): fvc_assets/deployment.py.
    resources=deployment.resources(),
)
