"""The ``sbatch`` command of one step, and what ``sbatch --parsable`` answers. Pure: no dagster.

The command is an argument list: options, then a fixed batch script (``run_step.sh``,
which does ``exec "$@"``), then the step command as separate arguments. Nothing is
pasted into a shell line, so a tag value or a partition key can never become code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from fvc_resources.slurm.requests import SlurmRequest

RUN_STEP_SCRIPT = Path(__file__).with_name("run_step.sh")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_JOB_ID = re.compile(r"^(\d+)(_\d+)?(;[\w.-]+)?$")


def safe_name(text: str) -> str:
    """``[A-Za-z0-9_.-]`` only, so a step key can name a job and a file."""
    return _UNSAFE.sub("_", text).strip("_") or "step"


def job_name(prefix: str, run_id: str, step_key: str, attempt: int) -> str:
    """``fvc-1a2b3c4d-augmented_videos`` and, for the n-th retry, ``...-retry<n>``.

    The first 8 characters of the run id tell runs apart in ``squeue`` without
    making the name too long to read; the full run id is in the job's comment.
    """
    name = f"{safe_name(prefix)}-{run_id[:8]}-{safe_name(step_key)}"
    return f"{name}-retry{attempt}" if attempt else name


def log_path(logs_dir: Path, run_id: str, step_key: str, attempt: int) -> Path:
    """``<logs>/<run id>/<step key>[.retry<n>].log``: one file per attempt, known before submission."""
    suffix = f".retry{attempt}" if attempt else ""
    return Path(logs_dir) / run_id / f"{safe_name(step_key)}{suffix}.log"


def sbatch_command(
    request: SlurmRequest,
    *,
    name: str,
    log: Path,
    workdir: Path,
    command: Sequence[str],
    comment: str = "",
    script: Path = RUN_STEP_SCRIPT,
    sbatch: str = "sbatch",
) -> list[str]:
    """``sbatch`` options, the fixed script, then the step command word by word.

    ``--no-requeue``: a step is never run twice behind Dagster's back (retries are
    Dagster's, as new jobs). ``--export=ALL``: the job gets the environment sbatch is
    called with (``DAGSTER_HOME``, ``FVC_DATA_DIR``, ``PATH`` of the same Python env).
    """
    if not command:
        raise ValueError("empty step command")
    options = [
        "--parsable",
        f"--job-name={name}",
        f"--output={log}",
        f"--error={log}",
        f"--chdir={workdir}",
        "--export=ALL",
        "--no-requeue",
        "--nodes=1",
        "--ntasks=1",
    ]
    if comment:
        options.append(f"--comment={safe_name(comment)}")
    return [sbatch, *options, *request.sbatch_options(), str(script), *command]


def parse_sbatch_output(stdout: str) -> str:
    """The job id from ``sbatch --parsable`` (``12345`` or ``12345;cluster``)."""
    lines = [line.strip() for line in stdout.strip().splitlines() if line.strip()]
    match = _JOB_ID.match(lines[-1]) if lines else None
    if not match:
        raise ValueError(f"sbatch did not answer with a job id: {stdout.strip()!r}")
    return match.group(1)
