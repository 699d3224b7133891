"""The one Dagster entry point: ``dagster dev`` / ``dagster definitions validate`` load ``defs``.

Heavy libraries (torch, diffusers, timm) are imported inside the functions
that use them, so this module loads fast for every step, sensor tick and UI.
"""

import dagster as dg
from fvc_assets.augment.assets import augmented_videos
from fvc_assets.automation import retrain_sensor, stage5_automation_sensor, with_automation
from fvc_assets.features.assets import handcrafted_features
from fvc_assets.features.scaled_assets import scaled_features
from fvc_assets.ingest.assets import raw_videos
from fvc_assets.ingest.sensors import inbox_sensor_factory
from fvc_assets.scale.assets import scaled_videos
from fvc_assets.stage_jobs import stage_jobs
from fvc_assets.jobs import VIDEO_PIPELINE_JOB, catalog_job, compare_job, train_job, video_pipeline_job
from fvc_assets.train.assets import folds, video_catalog
from fvc_assets.train.comparison_assets import model_comparison
from fvc_assets.train.fold_assets import all_models_and_folds_present, fold_results
from fvc_resources.autoencoder import AutoencoderResource
from fvc_resources.slurm.executor import fvc_executor
from fvc_resources.sampling import FrameSamplingResource
from fvc_resources.storage import StorageResource
from fvc_resources.tracking import MlflowTracking
from fvc_resources.training import TrainingResource
from fvc_resources.video_resource import VideoResource

defs = dg.Definitions(
    # video_catalog and folds refresh by declarative automation once new videos' runs settle.
    assets=with_automation([
        raw_videos, augmented_videos, handcrafted_features, scaled_videos, scaled_features,
        video_catalog, folds, fold_results, model_comparison,
    ]),
    asset_checks=[all_models_and_folds_present],
    # Multiprocess by default; FVC_EXECUTOR=slurm or run config `execution: {config: {slurm: {...}}}` for SLURM.
    executor=fvc_executor,
    jobs=[video_pipeline_job, catalog_job, train_job, compare_job, *stage_jobs],
    sensors=[inbox_sensor_factory(VIDEO_PIPELINE_JOB), stage5_automation_sensor, retrain_sensor],
    resources={
        "storage": StorageResource(),
        "video": VideoResource(),
        "sampling": FrameSamplingResource(),
        "autoencoder": AutoencoderResource(),
        "training": TrainingResource(),
        "tracking": MlflowTracking(),
    },
)
