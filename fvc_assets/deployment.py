"""The deployment's choices: the one place the platform reads its environment.

Everything below the definitions (resources, the executor, pure code) takes Dagster
config and reads no environment variable. This module turns the deployment's
environment into that config when the definitions are built:

=====================  ===========================================  ==========================
variable               becomes                                      when unset
=====================  ===========================================  ==========================
FVC_DATA_DIR           ``storage.data_dir`` (``dg.EnvVar``)          required: Dagster names it
MLFLOW_TRACKING_URI    ``tracking.tracking_uri`` (``dg.EnvVar``);    sqlite in the instance folder
                       a server (http/https) also configures
                       dagster-mlflow's resource ``mlflow``
FVC_TRAINING_PROFILE   ``training.profile`` (``dg.EnvVar``)          ``demo``
FVC_INBOX_SETTLE_S     ``storage.inbox_settle_seconds`` (``EnvVar``)  5
FVC_EXECUTOR           the executor's default backend               ``in_process``
FVC_MODELS             the model partition dimension (replaces)     the nine models
FVC_EXTRA_MODELS       models added to that dimension               none
=====================  ===========================================  ==========================

``dg.EnvVar`` values are read by each process when it initialises the resource (a run
worker, a SLURM job), and the UI's Resources page shows which variable they come from.
The executor and the model list shape the definitions themselves, so they are read once
when the definitions load (the UI, the daemon and ``fvc run`` must agree on them); a run
overrides the executor in its run config (``execution: {config: {slurm: {...}}}``).
"""

from __future__ import annotations

import os

import dagster as dg

DATA_DIR_ENV = "FVC_DATA_DIR"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
TRAINING_PROFILE_ENV = "FVC_TRAINING_PROFILE"
INBOX_SETTLE_ENV = "FVC_INBOX_SETTLE_S"
EXECUTOR_ENV = "FVC_EXECUTOR"
MODELS_ENV = "FVC_MODELS"
EXTRA_MODELS_ENV = "FVC_EXTRA_MODELS"


def env_var_or(name: str, default, env_var=dg.EnvVar):
    """``dg.EnvVar(name)`` (or ``dg.EnvVar.int``) when the variable is set here, else ``default``:
    an unset optional variable means the resource's default, not an error at run time."""
    return env_var(name) if os.environ.get(name) else default


def executor_backend() -> str:
    """The executor a run gets when its run config names none."""
    from fvc_resources.slurm.executor import DEFAULT_BACKEND

    return os.environ.get(EXECUTOR_ENV, "").strip().lower() or DEFAULT_BACKEND


def model_lists() -> tuple[str | None, str | None]:
    """(FVC_MODELS, FVC_EXTRA_MODELS) as written; ``partitions`` parses and checks them."""
    return os.environ.get(MODELS_ENV), os.environ.get(EXTRA_MODELS_ENV)


def mlflow_server_resource():
    """dagster-mlflow's ``mlflow_tracking`` when MLflow is a tracking server, else no resource
    (the ``tracking`` resource's own sqlite path): see fvc_resources/tracking.py."""
    from fvc_resources.tracking import SERVER_EXPERIMENT, is_tracking_server

    if not is_tracking_server(os.environ.get(TRACKING_URI_ENV)):
        return dg.ResourceDefinition.none_resource(
            description="None: MLflow is the embedded store, written by the tracking resource")
    from dagster_mlflow import mlflow_tracking

    return mlflow_tracking.configured(
        {"experiment_name": SERVER_EXPERIMENT, "mlflow_tracking_uri": {"env": TRACKING_URI_ENV}})


def resources() -> dict:
    from fvc_resources.autoencoder import AutoencoderResource
    from fvc_resources.batching import BatchingPolicy
    from fvc_resources.promotion import PromotionPolicy
    from fvc_resources.sampling import FrameSamplingResource
    from fvc_resources.storage import StorageResource
    from fvc_resources.tracking import MlflowTracking
    from fvc_resources.training import TrainingResource
    from fvc_resources.video_resource import VideoResource

    return {
        "storage": StorageResource(data_dir=dg.EnvVar(DATA_DIR_ENV),
                                   inbox_settle_seconds=env_var_or(INBOX_SETTLE_ENV, 5, dg.EnvVar.int)),
        "video": VideoResource(),
        "sampling": FrameSamplingResource(),
        "autoencoder": AutoencoderResource(),
        "training": TrainingResource(profile=env_var_or(TRAINING_PROFILE_ENV, "demo")),
        "tracking": MlflowTracking(tracking_uri=env_var_or(TRACKING_URI_ENV, None)),
        "mlflow": mlflow_server_resource(),
        "promotion": PromotionPolicy(),
        "batching": BatchingPolicy(),
    }
