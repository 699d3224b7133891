"""A real ``dagster-daemon run`` on the repo's workspace for tests: start it in its own process
group, wait on what it does, kill the group."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DAEMON = Path(sys.executable).parent / "dagster-daemon"
POLL_S = 0.05


def wait_until(predicate, timeout: float, what: str, daemon=None, log: Path | None = None, interval=POLL_S):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if daemon is not None and daemon.poll() is not None:
            pytest.fail(f"dagster-daemon exited with {daemon.returncode} while waiting for {what}\n{tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{tail(log)}")
        time.sleep(interval)


def tail(log: Path | None, n: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:])


def start_daemon(home: Path, data: Path, log: Path, **extra_env: str) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home), "FVC_DATA_DIR": str(data),
           "FVC_TRAINING_PROFILE": "smoke", "PYTHONUNBUFFERED": "1", **extra_env}
    with log.open("ab") as out:
        out.write(f"\n===== daemon start {time.strftime('%H:%M:%S')} =====\n".encode())
        out.flush()
        return subprocess.Popen(
            [str(DAEMON), "run", "-w", str(REPO_ROOT / "workspace.yaml")],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def kill_group(daemon: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to the daemon's process group (daemon + code server), then SIGKILL whatever is left."""
    pgid = daemon.pid  # start_new_session: the daemon leads its own group
    for signal_now in (sig, signal.SIGKILL):
        try:
            os.killpg(pgid, signal_now)
        except ProcessLookupError:
            break
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            continue
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # until the code server is gone too
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.1)
