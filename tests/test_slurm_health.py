"""How the step handler judges a step from its job's state and the step's own events.

SLURM's answers are stubbed here (``slurm_cli.show_jobs`` / ``show_job``), so every case runs in
milliseconds, including the ones a real cluster only shows after ``MinJobAge``
(a finished job that SLURM has forgotten).
"""

from types import SimpleNamespace

import pytest

from fvc_resources.slurm import slurm_cli
from fvc_resources.slurm.job_state import JobInfo
from fvc_resources.slurm.step_handler import SlurmStepHandler, SubmittedJob

RUN_ID = "0f0e0d0c-0000-0000-0000-000000000000"
STEP = "augmented_videos"


class FakeRetryState:
    def __init__(self, attempts: int):
        self.attempts = attempts

    def get_attempt_count(self, _key):
        return self.attempts


def context(end_events: int, attempt: int = 0):
    """A StepHandlerContext stand-in: the run's end events for the step, and the attempt."""
    records = [SimpleNamespace(event_log_entry=SimpleNamespace(step_key=STEP)) for _ in range(end_events)]
    records.append(SimpleNamespace(event_log_entry=SimpleNamespace(step_key="another_step")))
    known = SimpleNamespace(get_retry_state=lambda: FakeRetryState(attempt))
    return SimpleNamespace(
        execute_step_args=SimpleNamespace(run_id=RUN_ID, step_keys_to_execute=[STEP], known_state=known),
        instance=SimpleNamespace(get_records_for_run=lambda run_id, of_type=None, ascending=True:
                                 SimpleNamespace(records=records)),
    )


@pytest.fixture
def handler(tmp_path, monkeypatch):
    log = tmp_path / "augmented_videos.log"
    log.write_text("fvc-slurm: job 7 on vm\nslurmstepd-vm: error: *** JOB 7 ON vm CANCELLED AT 2026-01-01T10:00:00 "
                   "DUE TO TIME LIMIT ***\nTraceback: interrupted\n")
    handler = SlurmStepHandler()
    for attempt in (0, 1):
        handler._jobs[(RUN_ID, STEP, attempt)] = SubmittedJob(str(7 + attempt), f"fvc-0f0e0d0c-{STEP}", log, attempt)
    return handler


def slurm_says(monkeypatch, state: str | None):
    info = None if state is None else JobInfo(job_id="7", state=state, reason="TimeLimit" if state == "TIMEOUT" else "")
    monkeypatch.setattr(slurm_cli, "show_job", lambda job_id, *a, **k: info)
    monkeypatch.setattr(slurm_cli, "show_jobs", lambda job_ids, *a, **k: {str(j): info for j in job_ids})


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "COMPLETING"])
def test_a_queued_or_running_job_is_healthy(handler, monkeypatch, state):
    slurm_says(monkeypatch, state)
    assert handler.check_step_health(context(end_events=0)).is_healthy


@pytest.mark.parametrize("state", [None, "COMPLETED", "TIMEOUT", "CANCELLED"])
def test_an_ended_job_whose_step_reported_is_left_to_the_steps_own_event(handler, monkeypatch, state):
    slurm_says(monkeypatch, state)
    assert handler.check_step_health(context(end_events=1)).is_healthy


def test_a_forgotten_job_whose_step_said_nothing_is_unhealthy(handler, monkeypatch):
    slurm_says(monkeypatch, None)
    result = handler.check_step_health(context(end_events=0))
    assert not result.is_healthy
    assert "SLURM job 7" in result.unhealthy_reason and "no longer known to SLURM" in result.unhealthy_reason
    assert "Traceback: interrupted" in result.unhealthy_reason


def test_a_completed_job_whose_step_said_nothing_is_unhealthy(handler, monkeypatch):
    slurm_says(monkeypatch, "COMPLETED")
    result = handler.check_step_health(context(end_events=0))
    assert not result.is_healthy and "but the step reported no result" in result.unhealthy_reason


def test_a_killed_job_is_unhealthy_with_slurms_reason_and_notice(handler, monkeypatch):
    slurm_says(monkeypatch, "TIMEOUT")
    result = handler.check_step_health(context(end_events=0))
    assert not result.is_healthy
    assert result.unhealthy_reason.startswith("SLURM job 7 TIMEOUT (TimeLimit): the job ran past its time limit")
    assert "*** JOB 7 ON vm CANCELLED AT 2026-01-01T10:00:00 DUE TO TIME LIMIT ***" in result.unhealthy_reason


def test_the_first_attempts_end_does_not_count_for_the_retry(handler, monkeypatch):
    # Attempt 1 (the retry) has job 8; the one end event belongs to attempt 0.
    slurm_says(monkeypatch, "CANCELLED")
    result = handler.check_step_health(context(end_events=1, attempt=1))
    assert not result.is_healthy and "CANCELLED" in result.unhealthy_reason
    assert handler.check_step_health(context(end_events=2, attempt=1)).is_healthy


def test_a_step_without_a_recorded_job_is_unhealthy(monkeypatch):
    fresh = SlurmStepHandler()
    ctx = context(end_events=0)
    ctx.instance.get_records_for_run = lambda *a, **k: SimpleNamespace(records=[])
    result = fresh.check_step_health(ctx)
    assert not result.is_healthy and "no SLURM job was recorded" in result.unhealthy_reason



def test_the_health_checks_of_one_poll_share_one_slurm_listing(handler, monkeypatch):
    """Dagster asks step by step; the handler asks SLURM once for all its jobs and reuses the answer
    for the rest of the poll, then asks again at the next poll."""
    asked = []

    def listing(job_ids, *a, **k):
        asked.append(sorted(job_ids))
        return {str(j): JobInfo(job_id=str(j), state="RUNNING") for j in job_ids}

    monkeypatch.setattr(slurm_cli, "show_jobs", listing)
    clock = [100.0]
    monkeypatch.setattr("fvc_resources.slurm.step_handler.time.monotonic", lambda: clock[0])
    for attempt in (0, 1, 0, 1):
        assert handler.check_step_health(context(end_events=attempt, attempt=attempt)).is_healthy
    assert asked == [["7", "8"]]
    clock[0] += 1.0  # the next poll
    assert handler.check_step_health(context(end_events=0)).is_healthy
    assert asked == [["7", "8"], ["7", "8"]]


@pytest.mark.parametrize("state, retried", [("NODE_FAIL", True), ("PREEMPTED", True), ("CANCELLED", False),
                                            ("TIMEOUT", False)])
def test_only_a_job_lost_with_its_node_marks_the_run_for_dagsters_run_retry(handler, monkeypatch, state, retried):
    """The cluster's fault, not the step's: the run may be retried elsewhere; a cancel or a time limit may not."""
    slurm_says(monkeypatch, state)
    ctx = context(end_events=0)
    tagged = {}
    ctx.instance.add_run_tags = lambda run_id, tags: tagged.update({run_id: tags})
    ctx.instance.run_retries_enabled = True
    result = handler.check_step_health(ctx)
    assert not result.is_healthy and f"SLURM job 7 {state}" in result.unhealthy_reason
    if retried:
        assert tagged == {RUN_ID: {"dagster/retry_on_asset_or_op_failure": "true"}}
        assert "marked for Dagster's run retry" in result.unhealthy_reason
    else:
        assert tagged == {} and "run retry" not in result.unhealthy_reason
