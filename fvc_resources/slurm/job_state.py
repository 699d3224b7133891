"""What ``scontrol show job -o <id>`` says about a job, and what that means for its step. Pure.

There is no accounting database on the clusters we target first (``sacct`` may have
nothing), so the live job table is the source: ``scontrol`` keeps a finished job for
``MinJobAge`` seconds, after which the job is unknown and the step's own events decide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

# States in which the job may still do its work (or wait for it).
ACTIVE_STATES = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
    "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD",
})
# Terminal states in which the step did not finish on its own.
FAILED_STATES = frozenset({
    "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "CANCELLED", "BOOT_FAIL", "DEADLINE",
    "PREEMPTED", "REVOKED", "SPECIAL_EXIT",
})

# Terminal states in which the cluster, not the step, ended the job: the same step may well
# succeed on another node, so the run is worth a retry (see SlurmStepHandler).
NODE_LOSS_STATES = frozenset({"NODE_FAIL", "BOOT_FAIL", "PREEMPTED"})

# What each failed state means, in words a person reading the run can act on.
_MEANING = {
    "FAILED": "the job exited with a non-zero code",
    "TIMEOUT": "the job ran past its time limit (--time / tag slurm/time) and SLURM killed it",
    "OUT_OF_MEMORY": "the job ran out of memory (--mem / tag slurm/mem) and was killed",
    "NODE_FAIL": "the node running the job failed",
    "CANCELLED": "the job was cancelled (scancel, or an administrator)",
    "BOOT_FAIL": "the node failed to boot",
    "DEADLINE": "the job reached its deadline",
    "PREEMPTED": "the job was preempted",
}

_FIELD = re.compile(r"(?:^|\s)([A-Za-z/:]+)=(\S*)")
_UNKNOWN_JOB = "Invalid job id specified"


class Health(Enum):
    ACTIVE = "active"        # queued or running: healthy
    COMPLETED = "completed"  # ended with exit code 0: the step's own events say how it went
    FAILED = "failed"        # ended in a failed state
    UNKNOWN = "unknown"      # SLURM no longer (or never) knew the job


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    state: str
    reason: str = ""
    exit_code: str = ""
    submit_time: str = ""
    start_time: str = ""
    end_time: str = ""
    node_list: str = ""

    @property
    def health(self) -> Health:
        if self.state in ACTIVE_STATES:
            return Health.ACTIVE
        if self.state == "COMPLETED":
            return Health.COMPLETED
        return Health.FAILED  # FAILED_STATES, and any terminal state this module has not met

    @property
    def node_lost(self) -> bool:
        """SLURM ended the job because of its node (failure, boot failure, preemption)."""
        return self.state in NODE_LOSS_STATES

    def describe(self) -> str:
        """``SLURM job 12 TIMEOUT (TimeLimit, exit code 0:15): the job ran past its time limit ...``"""
        details = ", ".join(d for d in (
            self.reason if self.reason not in ("", "None") else "",
            f"exit code {self.exit_code}" if self.exit_code else "",
            f"node {self.node_list}" if self.node_list not in ("", "(null)") else "",
        ) if d)
        text = f"SLURM job {self.job_id} {self.state}" + (f" ({details})" if details else "")
        meaning = _MEANING.get(self.state)
        return f"{text}: {meaning}" if meaning else text


def _fields(line: str) -> dict[str, str]:
    """``Key=value`` fields of one ``scontrol show job -o`` line, up to ``Command=`` (the step's
    command line comes later and may contain anything)."""
    fields: dict[str, str] = {}
    for key, value in _FIELD.findall(line.split(" Command=", 1)[0]):
        fields.setdefault(key, value)
    return fields


def _info(job_id: str, fields: dict[str, str]) -> JobInfo:
    return JobInfo(
        job_id=str(job_id),
        state=fields["JobState"],
        reason=fields.get("Reason", ""),
        exit_code=fields.get("ExitCode", ""),
        submit_time=fields.get("SubmitTime", ""),
        start_time=fields.get("StartTime", ""),
        end_time=fields.get("EndTime", ""),
        node_list=fields.get("NodeList", ""),
    )


def parse_show_jobs(stdout: str) -> dict[str, JobInfo]:
    """Every job of a ``scontrol show job -o`` listing (all jobs), by id."""
    jobs = {}
    for line in stdout.splitlines():
        fields = _fields(line)
        if "JobId" in fields and "JobState" in fields:
            jobs[fields["JobId"]] = _info(fields["JobId"], fields)
    return jobs


def parse_show_job(job_id: str, stdout: str) -> JobInfo | None:
    """A ``JobInfo`` from ``scontrol show job -o``; None when SLURM does not know the job.

    Only the fields before ``Command=`` are read: the command line (our step's
    arguments) comes later and may contain anything.
    """
    text = stdout.strip()
    if not text or _UNKNOWN_JOB in text:
        return None
    line = text.splitlines()[0]
    fields = _fields(line)
    if fields.get("JobId") != str(job_id) or "JobState" not in fields:
        raise ValueError(f"unexpected scontrol output for job {job_id}: {line[:200]!r}")
    return _info(job_id, fields)


def is_unknown_job_error(stderr: str) -> bool:
    """``scontrol``/``scancel`` failing because the job id is not (or no longer) known."""
    return _UNKNOWN_JOB in stderr or "Invalid job id" in stderr


_NOTICE = re.compile(r"^slurmstepd\S*: error: \*\*\* .* \*\*\*$|oom[-_]kill|Exceeded job memory limit", re.IGNORECASE)


def slurm_notices(text: str) -> list[str]:
    """The lines slurmstepd writes into a job's log when it kills it
    (``*** JOB 12 ON node CANCELLED AT ... DUE TO TIME LIMIT ***``, out-of-memory kills)."""
    return [line.strip() for line in text.splitlines() if _NOTICE.search(line.strip())]


def tail(text: str, lines: int = 30) -> str:
    """The last ``lines`` lines of a job log, for a failure message."""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])
