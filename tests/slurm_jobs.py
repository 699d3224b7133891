"""Jobs the SLURM tests and the benchmark run: module-level and reconstructable, because
each step is loaded again inside its SLURM job (``python -m dagster api execute_step``).

``python -m tests.slurm_jobs JOB [RUN_CONFIG_JSON] [TAG=VALUE...]`` runs one job on the
instance at ``DAGSTER_HOME`` in this process (the tests start it as a subprocess so that
they can interrupt it or run it beside other tests).
"""

import json
import sys
import time

import dagster as dg
from fvc_assets.augment.assets import augmented_videos
from fvc_assets.ingest.assets import raw_videos
from fvc_resources.slurm.executor import fvc_executor_with_default, slurm_executor
from fvc_resources.storage import StorageResource
from fvc_resources.video_resource import VideoResource

STEP_ERROR = "boom: the step's own error, raised on the node"

# Stage 1 and its input, per video partition; the executor is picked by run config
# ({"slurm": {...}} or {"multiprocess": {}}), as users pick it.
stage1_job = dg.define_asset_job(
    "stage1", selection=dg.AssetSelection.assets(raw_videos, augmented_videos), executor_def=fvc_executor_with_default()
)


# Asks for memory and a GPU by tag, as the deep-model steps do (the local cluster has a fake GPU).
@dg.op(tags={"slurm/mem": "1G", "slurm/gres": "gpu:1"})
def raises() -> None:
    raise ValueError(STEP_ERROR)


class SleepConfig(dg.Config):
    seconds: float = 300.0


@dg.op
def sleeps(config: SleepConfig) -> None:
    time.sleep(config.seconds)


# One minute is SLURM's smallest time limit: the job is killed a minute (plus up to
# slurmctld's 30 s check interval) after it starts.
@dg.op(tags={"slurm/time": "1"})
def sleeps_past_time_limit(config: SleepConfig) -> None:
    time.sleep(config.seconds)


@dg.op(retry_policy=dg.RetryPolicy(max_retries=1))
def fails_first_attempt(context: dg.OpExecutionContext) -> int:
    if context.retry_number == 0:
        raise RuntimeError("first attempt fails on purpose")
    return context.retry_number


@dg.job(executor_def=slurm_executor)
def failing():
    raises()


@dg.job(executor_def=slurm_executor)
def sleeping():
    sleeps()


@dg.job(executor_def=slurm_executor)
def timing_out():
    sleeps_past_time_limit()


@dg.job(executor_def=slurm_executor)
def flaky():
    fails_first_attempt()


SLEEPERS = 6


@dg.job(executor_def=slurm_executor)
def many_sleepers():
    """Six steps in SLURM at once (the one-node cluster runs two, the rest wait): each is health-checked."""
    for i in range(SLEEPERS):
        sleeps.alias(f"sleeps_{i}")()


defs = dg.Definitions(
    assets=[raw_videos, augmented_videos],
    jobs=[stage1_job, failing, sleeping, timing_out, flaky, many_sleepers],
    resources={"storage": StorageResource(data_dir=dg.EnvVar("FVC_DATA_DIR")), "video": VideoResource()},
)


# dg.reconstructable needs a module-level function without arguments for each job.
def _stage1():
    return defs.resolve_job_def("stage1")


def _failing():
    return defs.resolve_job_def("failing")


def _sleeping():
    return defs.resolve_job_def("sleeping")


def _timing_out():
    return defs.resolve_job_def("timing_out")


def _flaky():
    return defs.resolve_job_def("flaky")


def _many_sleepers():
    return defs.resolve_job_def("many_sleepers")


_GETTERS = {"stage1": _stage1, "failing": _failing, "sleeping": _sleeping, "timing_out": _timing_out, "flaky": _flaky,
            "many_sleepers": _many_sleepers}


def recon(name: str):
    return dg.reconstructable(_GETTERS[name])


def execute(name: str, run_config: dict | None = None, tags: dict | None = None,
            instance: dg.DagsterInstance | None = None):
    """Run a job of this module through its executor on a persistent instance; blocks."""
    instance = instance or dg.DagsterInstance.get()
    return dg.execute_job(recon(name), instance=instance, run_config=run_config or {}, tags=tags or {},
                          raise_on_error=False)


if __name__ == "__main__":
    job = sys.argv[1]
    config = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    run_tags = dict(arg.split("=", 1) for arg in sys.argv[3:])
    with dg.DagsterInstance.get() as main_instance:
        result = execute(job, config, run_tags, main_instance)
    print(json.dumps({"run_id": result.run_id, "success": result.success}))
