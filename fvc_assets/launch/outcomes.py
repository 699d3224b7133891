"""Why a run failed, in one line, read from its event log (what the UI shows on the run's page)."""

from __future__ import annotations

import dagster as dg

EventType = dg.DagsterEventType


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """'check C on A failed: what it names' for each failed blocking (ERROR) check of the run."""
    parts = []
    for record in instance.get_records_for_run(run_id, of_type=EventType.ASSET_CHECK_EVALUATION).records:
        evaluation = record.event_log_entry.dagster_event.asset_check_evaluation_data
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        named = [f"{k}={v.value}" for k, v in evaluation.metadata.items() if k in ("problems", "missing")]
        parts.append(f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} failed"
                     + (f": {'; '.join(named)}" if named else ""))
    return parts


def process_end(instance: dg.DagsterInstance, run_id: str, step_key: str) -> str | None:
    """What the executor said when a step's own process died (signal, exit code) or SLURM ended its job
    (``SLURM job 12 NODE_FAIL (...): ...``, written by the SLURM executor beside the step's failure)."""
    for record in instance.get_records_for_run(run_id, of_type=EventType.ENGINE_EVENT).records:
        entry = record.event_log_entry
        message = (entry.user_message or "").strip()
        if entry.step_key == step_key and ("child process for step" in message or message.startswith("SLURM job ")):
            return message.splitlines()[0]
    return None


def step_failure(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The first failed step's own message (a dg.Failure's description, else the error's message)."""
    for record in instance.get_records_for_run(run_id, of_type=EventType.STEP_FAILURE).records:
        event = record.event_log_entry.dagster_event
        data = event.step_failure_data
        description = getattr(data.user_failure_data, "description", None)
        if description:
            return f"{event.step_key}: {description}"
        error = data.error
        if error is None:
            continue
        # The user's exception is the cause of Dagster's "error occurred while executing the step".
        # The step's process died, or was interrupted because SLURM ended its job: say how.
        if error.cls_name in ("ChildProcessCrashException", "DagsterExecutionInterruptedError"):
            ended = process_end(instance, run_id, event.step_key)
            if ended:
                return f"{event.step_key}: {ended}"
        user = error.cause if error.cls_name == "DagsterExecutionStepExecutionError" and error.cause else error
        return f"{event.step_key}: {user.message.strip()}"
    return None


def run_failure(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The run-level reason (a worker that died, a launch that failed, a canceled run)."""
    types = {EventType.RUN_FAILURE, EventType.RUN_CANCELED, EventType.ENGINE_EVENT}
    records = instance.get_records_for_run(run_id, of_type=types, ascending=False, limit=20).records
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        message = (entry.user_message or (event.message if event else "") or "").strip()
        if event.event_type == EventType.ENGINE_EVENT and not (
            message.startswith("Detected run worker status") or "interrupted" in message.lower()
        ):
            continue
        if message:
            return message.splitlines()[0]
    return None


def failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    """Failed blocking checks first (the usual cause of a blocked step), then the step's error, then the run's."""
    checks = failed_checks(instance, run_id)
    if checks:
        return "; ".join(checks)
    return (step_failure(instance, run_id) or run_failure(instance, run_id)
            or "run failed (see the run's logs in the Dagster UI)")


def failed_videos(instance: dg.DagsterInstance, run_id: str) -> tuple[dict[str, str], bool]:
    """For a batch run (``fvc_assets.steps.per_video``): video -> why it failed, as its steps named them
    (``failed_videos``), and whether the run failed without naming its videos (a step that failed
    whole, before or outside its loop over videos; a run that ended before its steps did)."""
    from fvc_assets.steps.per_video import FAILED_VIDEOS

    named: dict[str, str] = {}
    unnamed = False
    failures = instance.get_records_for_run(run_id, of_type=EventType.STEP_FAILURE).records
    for record in failures:
        data = record.event_log_entry.dagster_event.step_failure_data.user_failure_data
        listed = data.metadata.get(FAILED_VIDEOS) if data is not None else None
        if listed is None:
            unnamed = True
            continue
        for key, reason in listed.value.items():
            named.setdefault(key, reason)
    return named, unnamed or not failures


def batch_outcome(instance: dg.DagsterInstance, run: dg.DagsterRun, batch: list[str]) -> dict[str, str]:
    """video -> why it failed, for the videos of a batch run: those its step named (``failed_videos``);
    every video, with the run's failure, when the run failed otherwise (a crash, a lock held)."""
    if run.status == dg.DagsterRunStatus.SUCCESS:
        return {}
    named, unnamed = failed_videos(instance, run.run_id)
    reason = failure_message(instance, run.run_id) if unnamed else ""
    return {key: named.get(key, reason) for key in batch if key in named or unnamed}
