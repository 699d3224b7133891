"""Calls to the SLURM client commands, always as argument lists (never through a shell). No dagster.

Client commands find the cluster through ``SLURM_CONF`` (or /etc/slurm/slurm.conf),
which they read from the environment passed in.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from fvc_resources.slurm.job_state import (
    JobInfo,
    is_unknown_job_error,
    parse_show_job,
    parse_show_jobs,
    slurm_notices,
    tail,
)
from fvc_resources.slurm.sbatch import parse_sbatch_output

TIMEOUT_S = 60


class SlurmCommandError(RuntimeError):
    """A SLURM client command failed; the message carries its stderr."""


def _run(args: Sequence[str], env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(args), env=dict(env) if env is not None else None,
                              capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except FileNotFoundError as error:
        raise SlurmCommandError(f"{args[0]} not found: is this a SLURM submit host? ({error})") from error
    except subprocess.TimeoutExpired as error:
        raise SlurmCommandError(f"{args[0]} did not answer within {TIMEOUT_S}s") from error


def submit(command: Sequence[str], env: Mapping[str, str]) -> str:
    """Run an ``sbatch --parsable`` command; returns the job id."""
    done = _run(command, env)
    if done.returncode != 0:
        raise SlurmCommandError(f"sbatch refused the job (exit {done.returncode}): {done.stderr.strip()}")
    return parse_sbatch_output(done.stdout)


def show_job(job_id: str, env: Mapping[str, str] | None = None, scontrol: str = "scontrol") -> JobInfo | None:
    """The job as ``scontrol`` sees it now; None when SLURM no longer knows it."""
    done = _run([scontrol, "show", "job", "-o", str(job_id)], env)
    if done.returncode != 0:
        if is_unknown_job_error(done.stderr + done.stdout):
            return None
        raise SlurmCommandError(f"scontrol show job {job_id} failed: {done.stderr.strip()}")
    return parse_show_job(str(job_id), done.stdout)


def show_jobs(job_ids, env: Mapping[str, str] | None = None, scontrol: str = "scontrol") -> dict[str, JobInfo | None]:
    """The state of each of ``job_ids`` from one ``scontrol show job`` call (all jobs, one line each):
    one request to slurmctld per poll, however many steps are waiting. None: no longer known."""
    done = _run([scontrol, "show", "job", "-o"], env)
    if done.returncode != 0:
        raise SlurmCommandError(f"scontrol show job failed: {done.stderr.strip()}")
    known = parse_show_jobs(done.stdout)
    return {str(job_id): known.get(str(job_id)) for job_id in job_ids}


def cancel(job_id: str, env: Mapping[str, str] | None = None, scancel: str = "scancel") -> bool:
    """``scancel <id>``; False when the job was already gone."""
    done = _run([scancel, str(job_id)], env)
    if done.returncode != 0:
        if is_unknown_job_error(done.stderr):
            return False
        raise SlurmCommandError(f"scancel {job_id} failed: {done.stderr.strip()}")
    return True


def reachable(env: Mapping[str, str] | None = None, scontrol: str = "scontrol") -> str | None:
    """None when the SLURM controller answers; else why not (no client commands, controller down)."""
    try:
        done = _run([scontrol, "ping"], env)
    except SlurmCommandError as error:
        return str(error)
    if done.returncode != 0 or "UP" not in done.stdout:
        return f"scontrol ping: {(done.stdout + done.stderr).strip() or f'exit {done.returncode}'}"
    return None


def queued_job_ids(name: str, env: Mapping[str, str] | None = None, squeue: str = "squeue") -> list[str]:
    """Ids of the jobs with this name that ``squeue`` still lists (any state)."""
    done = _run([squeue, "-h", "--name", name, "-o", "%A"], env)
    if done.returncode != 0:
        raise SlurmCommandError(f"squeue --name {name} failed: {done.stderr.strip()}")
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def read_log(path: Path, max_bytes: int = 256_000) -> str | None:
    """The end of a job's log (at most ``max_bytes``), or None when there is no log to read."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return None


def log_excerpt(path: Path, lines: int = 30) -> str:
    """What a person needs from a failed job's log: SLURM's own kill notices, then the last lines."""
    text = read_log(path)
    if text is None:
        return f"(no log at {path})"
    notices = [n for n in slurm_notices(text) if n not in tail(text, lines)]
    return "\n".join([*notices, tail(text, lines) or "(log is empty)"])
