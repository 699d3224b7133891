"""``SlurmStepHandler``: each Dagster step runs as one ``sbatch`` job.

The job runs the step command of ``ExecuteStepArgs`` (``python -m dagster api
execute_step ...``) with the orchestrator's Python and environment, so the step
loads the same code, resources and instance, and reports its own events to the
instance's event log. The handler only submits, watches and cancels jobs.
"""

import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster._check as check
from dagster import MetadataValue
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
from dagster._core.executor.step_delegating.step_handler.base import (
    CheckStepHealthResult,
    StepHandler,
    StepHandlerContext,
)
from dagster._core.storage.tags import RETRY_ON_ASSET_OR_OP_FAILURE_TAG

from fvc_resources.slurm import slurm_cli
from fvc_resources.slurm.job_state import Health, JobInfo
from fvc_resources.slurm.requests import SlurmRequest, request_from_tags
from fvc_resources.slurm.sbatch import job_name, log_path, sbatch_command

# Metadata keys of the step-starting event; the handler finds its job again by them.
JOB_ID_KEY = "slurm_job_id"
# How long one `scontrol show job` answer serves the health checks of the steps of a run.
STATUS_MAX_AGE_S = 1.0
JOB_NAME_KEY = "slurm_job_name"
LOG_KEY = "slurm_log"

# Events that close one attempt of a step (exactly one per attempt).
_ATTEMPT_END = {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_UP_FOR_RETRY}


@dataclass(frozen=True)
class SlurmSettings:
    """The executor's config, resolved: defaults for every step, and where things go."""

    defaults: SlurmRequest = SlurmRequest()
    logs_dir: Path | None = None          # None: <instance root>/slurm_logs
    working_directory: Path | None = None  # None: the orchestrator's working directory
    env_vars: tuple[str, ...] = ()         # "NAME=value", or "NAME" to pass this process's value
    job_name_prefix: str = "fvc"
    log_tail_lines: int = 30


@dataclass(frozen=True)
class SubmittedJob:
    job_id: str
    name: str
    log: Path
    attempt: int


class SlurmStepHandler(StepHandler):
    def __init__(self, settings: SlurmSettings | None = None):
        super().__init__()
        self.settings = settings or SlurmSettings()
        # (run id, step key, attempt) -> job; a handler lives as long as one run's orchestration.
        self._jobs: dict[tuple[str, str, int], SubmittedJob] = {}
        # Job ids whose SLURM failure has already been written to the event log.
        self._explained: set[str] = set()
        self._latest: dict[tuple[str, str], SubmittedJob] = {}
        # One `scontrol show job` answers every step's health check of one poll (the executor
        # asks step by step, within milliseconds): states younger than STATUS_MAX_AGE_S are reused.
        self._status: dict[str, JobInfo | None] = {}
        self._status_at = float("-inf")

    @property
    def name(self) -> str:
        return "SlurmStepHandler"

    # -- launch ---------------------------------------------------------------------------

    def launch_step(self, step_handler_context: StepHandlerContext) -> Iterator[DagsterEvent]:
        args = step_handler_context.execute_step_args
        step_key = _single_step_key(step_handler_context)
        attempt = _attempt(step_handler_context, step_key)
        # Executor defaults < the run's slurm/* tags (a launch, a sensor or a backfill can set
        # them) < the op's slurm/* tags.
        request = self.settings.defaults.merged(
            request_from_tags(step_handler_context.dagster_run.tags, "run")
        ).merged(request_from_tags(step_handler_context.step_tags[step_key], step_key))
        name = job_name(self.settings.job_name_prefix, args.run_id, step_key, attempt)
        log = log_path(self._logs_dir(step_handler_context), args.run_id, step_key, attempt)
        log.parent.mkdir(parents=True, exist_ok=True)
        command = sbatch_command(
            request,
            name=name,
            log=log,
            workdir=self.settings.working_directory or Path.cwd(),
            # The step's arguments (instance reference, storage config and its credentials included)
            # travel in the job's environment, as dagster-k8s passes them, not on its command line,
            # where `ps` on the node and `scontrol show job` would show them to every user.
            command=args.get_command_args(skip_serialized_namedtuple=True),
            comment=args.run_id,
        )
        env = self._job_env(step_handler_context, step_key)
        env.update({item["name"]: item["value"] for item in args.get_command_env()})
        job_id = slurm_cli.submit(command, env)
        submitted = SubmittedJob(job_id, name, log, attempt)
        self._jobs[(args.run_id, step_key, attempt)] = submitted
        self._latest[(args.run_id, step_key)] = submitted
        yield DagsterEvent.step_worker_starting(
            step_handler_context.get_step_context(step_key),
            message=f"Submitted step as SLURM job {job_id} ({name}); its log: {log}",
            metadata={
                JOB_ID_KEY: MetadataValue.text(job_id),
                JOB_NAME_KEY: MetadataValue.text(name),
                LOG_KEY: MetadataValue.path(str(log)),
                "slurm_request": MetadataValue.text(" ".join(request.sbatch_options()) or "(cluster defaults)"),
                "attempt": MetadataValue.int(attempt),
            },
        )

    def _logs_dir(self, context: StepHandlerContext) -> Path:
        return Path(self.settings.logs_dir or Path(context.instance.root_directory) / "slurm_logs")

    def _job_env(self, context: StepHandlerContext, step_key: str) -> dict[str, str]:
        """This process's environment (sbatch --export=ALL hands it to the job), plus:
        the Python env's bin first on PATH, DAGSTER_HOME when the instance has a home,
        the executor's env_vars, which run and step the job belongs to, and a 1 s wait for the log tail."""
        env = dict(os.environ)
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([bin_dir, *[p for p in env.get("PATH", "").split(os.pathsep) if p != bin_dir]])
        if "DAGSTER_HOME" not in env and context.instance.is_persistent:
            env["DAGSTER_HOME"] = context.instance.root_directory
        for item in self.settings.env_vars:
            key, sep, value = item.partition("=")
            if sep:
                env[key] = value
            elif key in os.environ:
                env[key] = os.environ[key]
        # Dagster copies step output into the job log with `tail -F` (1 s polls) and kills it when the
        # step ends: without a wait the log loses its last lines (dagster-io/dagster#23336).
        env.setdefault("DAGSTER_COMPUTE_LOG_TAIL_WAIT_AFTER_FINISH", "1")
        env["DAGSTER_RUN_JOB_NAME"] = context.dagster_run.job_name
        env["DAGSTER_RUN_STEP_KEY"] = step_key
        return env

    # -- health ---------------------------------------------------------------------------

    def check_step_health(self, step_handler_context: StepHandlerContext) -> CheckStepHealthResult:
        step_key = _single_step_key(step_handler_context)
        attempt = _attempt(step_handler_context, step_key)
        job = self._job(step_handler_context, step_key, attempt)
        if job is None:
            return CheckStepHealthResult.unhealthy(f"no SLURM job was recorded for step {step_key}")
        info = self._job_info(job.job_id)
        if info is not None and info.health == Health.ACTIVE:
            return CheckStepHealthResult.healthy()
        # The job has ended or is gone. If the step closed this attempt itself (success,
        # failure or retry request), its own event is the truth and the executor acts on it.
        if self._step_reported(step_handler_context, step_key, attempt):
            return CheckStepHealthResult.healthy()
        self._explained.add(job.job_id)  # the reason goes into the step's failure itself
        if info is None:
            what = f"SLURM job {job.job_id} ({job.name}) is no longer known to SLURM and the step reported no result"
        elif info.health == Health.COMPLETED:
            what = f"{info.describe()}, but the step reported no result"
        else:
            what = info.describe() + self._retry_if_node_lost(step_handler_context.instance,
                                                              step_handler_context.execute_step_args.run_id, info)
        return CheckStepHealthResult.unhealthy(f"{what}. From {job.log}:\n{self._excerpt(job)}")

    def _job_info(self, job_id: str) -> JobInfo | None:
        now = time.monotonic()
        if job_id not in self._status or now - self._status_at >= STATUS_MAX_AGE_S:
            tracked = {job.job_id for job in self._jobs.values()} | {job_id}
            self._status, self._status_at = slurm_cli.show_jobs(tracked), now
        return self._status.get(job_id)

    def explain_end(self, step_context, run_id: str, step_key: str, wait_seconds: float) -> None:
        """After a step reported its own failure: if SLURM ended its job (scancel, time limit,
        memory, node failure), say so in the step's event log, with SLURM's notice from the log.

        A step that SLURM signals fails on its own as "interrupted", which hides the cause;
        this names it. Waits up to ``wait_seconds`` for the job to leave RUNNING/COMPLETING.
        """
        job = self._latest.get((run_id, step_key))
        if job is None or job.job_id in self._explained:
            return
        deadline = time.monotonic() + wait_seconds
        info = slurm_cli.show_job(job.job_id)
        while info is not None and info.health == Health.ACTIVE and time.monotonic() < deadline:
            time.sleep(0.25)
            info = slurm_cli.show_job(job.job_id)
        if info is None or info.health != Health.FAILED:
            return  # the step's own error is the whole story
        self._explained.add(job.job_id)
        retry = self._retry_if_node_lost(step_context.instance, run_id, info)
        DagsterEvent.engine_event(
            step_context,
            f"{info.describe()}{retry}. From {job.log}:\n{self._excerpt(job)}",
            EngineEventData(metadata={JOB_ID_KEY: MetadataValue.text(job.job_id),
                                      "slurm_state": MetadataValue.text(info.state),
                                      LOG_KEY: MetadataValue.path(str(job.log))}),
        )

    @staticmethod
    def _retry_if_node_lost(instance, run_id: str, info: JobInfo) -> str:
        """When SLURM ended the job because of its node, let Dagster's run retries take the run
        (they skip runs whose steps failed, unless the run says otherwise): the daemon re-executes
        it from the failure, and the step lands on a node that is up. A step that failed by itself,
        or that someone cancelled, keeps its failure. Returns what to add to the failure's message."""
        if not info.node_lost:
            return ""
        instance.add_run_tags(run_id, {RETRY_ON_ASSET_OR_OP_FAILURE_TAG: "true"})
        if instance.run_retries_enabled:
            return ("; the cluster lost the node, not the step: the run is marked for Dagster's run retry "
                    "(run_retries), which re-executes it from this failure")
        return ("; the cluster lost the node, not the step: re-execute the run from failure (this instance "
                "has no run_retries to do it)")

    def _excerpt(self, job: SubmittedJob) -> str:
        return slurm_cli.log_excerpt(job.log, self.settings.log_tail_lines)

    def _step_reported(self, context: StepHandlerContext, step_key: str, attempt: int) -> bool:
        """Whether this attempt of the step has an end event (attempt n is closed by the n+1-th)."""
        records = context.instance.get_records_for_run(context.execute_step_args.run_id, of_type=_ATTEMPT_END).records
        ends = sum(1 for r in records if r.event_log_entry.step_key == step_key)
        return ends > attempt

    # -- terminate ------------------------------------------------------------------------

    def terminate_step(self, step_handler_context: StepHandlerContext) -> Iterator[DagsterEvent]:
        step_key = _single_step_key(step_handler_context)
        attempt = _attempt(step_handler_context, step_key)
        run_id = step_handler_context.execute_step_args.run_id
        job = self._job(step_handler_context, step_key, attempt)
        if job is not None:
            job_ids = [job.job_id]
        else:  # nothing recorded: find it by its name
            job_ids = slurm_cli.queued_job_ids(job_name(self.settings.job_name_prefix, run_id, step_key, attempt))
        for job_id in job_ids:
            yield DagsterEvent.engine_event(
                step_handler_context.get_step_context(step_key),
                f"Cancelling SLURM job {job_id} of step {step_key} (scancel).",
                EngineEventData(metadata={JOB_ID_KEY: MetadataValue.text(job_id)}),
            )
            slurm_cli.cancel(job_id)

    # -- finding a step's job -------------------------------------------------------------

    def _job(self, context: StepHandlerContext, step_key: str, attempt: int) -> SubmittedJob | None:
        run_id = context.execute_step_args.run_id
        job = self._jobs.get((run_id, step_key, attempt))
        return job if job is not None else self._recorded_job(context, step_key, attempt)

    def _recorded_job(self, context: StepHandlerContext, step_key: str, attempt: int) -> SubmittedJob | None:
        """The job from this step's latest step-starting event (a run resumed by a new orchestrator)."""
        records = context.instance.get_records_for_run(
            context.execute_step_args.run_id, of_type=DagsterEventType.STEP_WORKER_STARTING, ascending=False
        ).records
        for record in records:
            if record.event_log_entry.step_key != step_key:
                continue
            metadata = _metadata(record.event_log_entry.dagster_event)
            if JOB_ID_KEY in metadata:
                return SubmittedJob(
                    job_id=str(metadata[JOB_ID_KEY].value),
                    name=str(metadata[JOB_NAME_KEY].value) if JOB_NAME_KEY in metadata else "",
                    log=Path(str(metadata[LOG_KEY].value)) if LOG_KEY in metadata else Path("?"),
                    attempt=attempt,
                )
        return None


def _metadata(event: DagsterEvent | None) -> Mapping:
    if event is None or event.event_specific_data is None:
        return {}
    return getattr(event.event_specific_data, "metadata", None) or {}


def _single_step_key(context: StepHandlerContext) -> str:
    keys = check.not_none(context.execute_step_args.step_keys_to_execute)
    check.invariant(len(keys) == 1, "SlurmStepHandler runs one step per job")
    return keys[0]


def _attempt(context: StepHandlerContext, step_key: str) -> int:
    """0 for the first run of a step, n for its n-th retry."""
    known = context.execute_step_args.known_state
    return known.get_retry_state().get_attempt_count(step_key) if known else 0
