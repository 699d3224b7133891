"""``slurm_executor``: Dagster's ``StepDelegatingExecutor`` with our ``SlurmStepHandler``,
and ``fvc_executor_with_default``: the platform's executor (in_process, multiprocess or slurm).

Choosing (see docs/slurm.md): the definitions build the executor with a default
backend (``fvc_executor_with_default("slurm")``: the deployment's choice, see
``fvc_assets/deployment.py``), and any run overrides it in run config:
``execution: {config: {slurm: {partition: gpu}}}`` (``{in_process: {}}`` or
``{multiprocess: {}}`` go back to this machine). Nothing here reads the environment:
a value that should come from one is written ``{env: NAME}`` in the config.

``retries``, ``max_concurrent``, ``tag_concurrency_limits`` and concurrency pools
(``pool="gpu"``) are handled by Dagster's own machinery in both cases.
"""

from pathlib import Path

import dagster as dg
from dagster._core.definitions.executor_definition import (
    IN_PROC_CONFIG,
    MULTI_PROC_CONFIG,
    _core_in_process_executor_creation,
    _core_multiprocess_executor_creation,
    multiple_process_executor_requirements,
)
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.execution.tags import get_tag_concurrency_limits_config
from dagster._core.executor.step_delegating import StepDelegatingExecutor

from fvc_resources.slurm.requests import OPTIONS, request_from_mapping
from fvc_resources.slurm.step_handler import SlurmSettings, SlurmStepHandler

_REQUEST_FIELDS = {
    "partition": dg.Field(dg.StringSource, is_required=False, description="sbatch --partition (tag slurm/partition)."),
    "account": dg.Field(dg.StringSource, is_required=False, description="sbatch --account (tag slurm/account)."),
    "qos": dg.Field(dg.StringSource, is_required=False, description="sbatch --qos (tag slurm/qos)."),
    "cpus": dg.Field(dg.IntSource, is_required=False, description="sbatch --cpus-per-task (tag slurm/cpus)."),
    "mem": dg.Field(dg.StringSource, is_required=False, description="sbatch --mem, e.g. 8G (tag slurm/mem)."),
    "time": dg.Field(dg.StringSource, is_required=False, description="sbatch --time, e.g. 2:00:00 (tag slurm/time)."),
    "gres": dg.Field(dg.StringSource, is_required=False, description="sbatch --gres, e.g. gpu:1 (tag slurm/gres)."),
    "constraint": dg.Field(dg.StringSource, is_required=False, description="sbatch --constraint (tag slurm/constraint)."),
    "extra_args": dg.Field(
        [str], is_required=False,
        description="More sbatch long options for every step, one per item (e.g. --exclusive).",
    ),
}

SLURM_CONFIG = {
    **_REQUEST_FIELDS,
    "logs_dir": dg.Field(
        dg.StringSource, is_required=False,
        description="Folder for the step logs (<logs_dir>/<run id>/<step>.log); on a shared "
                    "filesystem for a real cluster. Default: <instance root>/slurm_logs.",
    ),
    "working_directory": dg.Field(dg.StringSource, is_required=False, description="--chdir of the jobs; default: this process's."),
    "env_vars": dg.Field(
        [str], default_value=[],
        description="Extra environment for the jobs: NAME=value, or NAME to pass this process's value. "
                    "The jobs get this process's whole environment already (--export=ALL).",
    ),
    "job_name_prefix": dg.Field(str, default_value="fvc"),
    "log_tail_lines": dg.Field(int, default_value=30, description="Log lines quoted when a job fails."),
    "check_step_health_interval_seconds": dg.Field(
        int, default_value=10, description="How often scontrol is asked about running jobs."
    ),
    "end_wait_seconds": dg.Field(
        float, default_value=15.0,
        description="After a step fails, how long to wait for its job to end to tell whether SLURM killed it.",
    ),
    "retries": get_retries_config(),
    "max_concurrent": dg.Field(
        int, is_required=False, description="At most this many step jobs of one run in SLURM at once."
    ),
    "tag_concurrency_limits": get_tag_concurrency_limits_config(),
}


def settings_from_config(config: dict) -> SlurmSettings:
    """The executor's settings from its (resolved) config."""
    values = {name: config[name] for name in OPTIONS if config.get(name) is not None}
    values["extra_args"] = config.get("extra_args") or []
    logs_dir = config.get("logs_dir")
    workdir = config.get("working_directory")
    return SlurmSettings(
        defaults=request_from_mapping(values),
        logs_dir=Path(logs_dir).absolute() if logs_dir else None,
        working_directory=Path(workdir).absolute() if workdir else None,
        env_vars=tuple(config.get("env_vars") or ()),
        job_name_prefix=config.get("job_name_prefix") or "fvc",
        log_tail_lines=config.get("log_tail_lines", 30),
    )


class SlurmExecutor(StepDelegatingExecutor):
    """Dagster's step-delegating executor with one addition: when a step fails after SLURM
    ended its job (scancel, time limit, memory), the step fails on its own as "interrupted";
    the handler then writes SLURM's reason next to that failure."""

    def __init__(self, step_handler: SlurmStepHandler, end_wait_seconds: float, **kwargs):
        super().__init__(step_handler, **kwargs)
        self._slurm_handler = step_handler
        self._end_wait_seconds = end_wait_seconds

    def execute(self, plan_context, execution_plan):
        for event in super().execute(plan_context, execution_plan):
            if (event.is_step_failure or event.is_step_up_for_retry) and event.step_key:
                step_context = plan_context.for_step(execution_plan.get_step_by_key(event.step_key))
                self._slurm_handler.explain_end(step_context, plan_context.run_id, event.step_key,
                                                self._end_wait_seconds)
            yield event


def slurm_executor_from_config(config: dict) -> SlurmExecutor:
    return SlurmExecutor(
        SlurmStepHandler(settings_from_config(config)),
        end_wait_seconds=config.get("end_wait_seconds", 15),
        retries=RetryMode.from_config(config.get("retries") or {"enabled": {}}),
        max_concurrent=config.get("max_concurrent"),
        tag_concurrency_limits=config.get("tag_concurrency_limits"),
        # The job re-checks, before running, that its attempt is still the one wanted
        # (a job that starts late, after a retry or a cancel, does nothing).
        should_verify_step=True,
        check_step_health_interval_seconds=config.get("check_step_health_interval_seconds", 10),
    )


@dg.executor(name="slurm", config_schema=SLURM_CONFIG, requirements=multiple_process_executor_requirements())
def slurm_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """Runs each step as one SLURM job (``sbatch``), watched with ``scontrol`` and
    cancelled with ``scancel``. Per-step requests ride on op tags ``slurm/partition``,
    ``slurm/cpus``, ``slurm/mem``, ``slurm/time``, ``slurm/gres``, ``slurm/account``,
    ``slurm/qos``, ``slurm/constraint``, ``slurm/extra_args``; the config gives defaults.
    """
    return slurm_executor_from_config(dict(init_context.executor_config))


BACKENDS = ("multiprocess", "in_process", "slurm")
DEFAULT_BACKEND = "in_process"  # one machine: all of a run's steps in its run worker


def _requirements(config) -> list:
    # As Dagster's default executor: only the in-process backend can run on an ephemeral instance.
    return [] if "in_process" in config else multiple_process_executor_requirements()


def fvc_executor_with_default(backend: str = DEFAULT_BACKEND) -> dg.ExecutorDefinition:
    """The platform's executor: Dagster's default executor (same config: ``multiprocess`` or
    ``in_process``) with ``slurm`` as a third choice; ``backend`` is the one a run gets when
    its run config names none."""
    backend = backend.strip().lower()
    if backend not in BACKENDS:
        raise ValueError(f"executor {backend!r}: expected one of {', '.join(BACKENDS)}")

    @dg.executor(
        name="fvc",
        config_schema=dg.Field(
            dg.Selector({
                "multiprocess": MULTI_PROC_CONFIG.config_type,
                "in_process": IN_PROC_CONFIG.config_type,
                "slurm": SLURM_CONFIG,
            }),
            default_value={backend: {}},
            description="in_process (all steps in the run's worker), multiprocess (one process per step, "
                        "on this machine) or slurm (one SLURM job per step).",
        ),
        requirements=_requirements,
    )
    def fvc_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
        config = dict(init_context.executor_config)
        if "slurm" in config:
            return slurm_executor_from_config(dict(config["slurm"]))
        if "in_process" in config:
            return _core_in_process_executor_creation(config["in_process"])
        return _core_multiprocess_executor_creation(config["multiprocess"])

    return fvc_executor
