"""Fixtures for the SLURM tests: a real two-node cluster (scripts/slurm-local.sh, nodes n1 and
n2) for the session, a real PostgreSQL server (scripts/postgres-local.sh), and a Dagster
instance + data root whose paths every SLURM job can see."""

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SLURM_LOCAL = REPO_ROOT / "scripts" / "slurm-local.sh"
POSTGRES_LOCAL = REPO_ROOT / "scripts" / "postgres-local.sh"
NODES = ("n1", "n2")
SLURM_TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")


@dataclass(frozen=True)
class LocalCluster:
    state_dir: Path
    conf: Path
    nodes: tuple[str, ...] = NODES

    def set_node_state(self, node: str, state: str, reason: str = "") -> None:
        """``scontrol update nodename=N state=...`` (down ends the node's jobs: NODE_FAIL)."""
        command = ["scontrol", "update", f"nodename={node}", f"state={state}"]
        subprocess.run(command + ([f"reason={reason}"] if reason else []), check=True, capture_output=True)

    def squeue_ids(self) -> set[str]:
        done = subprocess.run(["squeue", "-h", "-o", "%A"], capture_output=True, text=True, check=True)
        return set(done.stdout.split())

    def job_field(self, job_id: str, name: str) -> str:
        done = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=True)
        for item in done.stdout.split():  # the first match: fields before Command= come first
            key, _, value = item.partition("=")
            if key == name:
                return value
        raise KeyError(f"{name} not in scontrol output for job {job_id}")

    def final_state(self, job_id: str, timeout: float = 20) -> str:
        """The job's state once it has left PENDING/RUNNING/COMPLETING. A job outlives its step's last
        event by the compute-log tail's wait (DAGSTER_COMPUTE_LOG_TAIL_WAIT_AFTER_FINISH)."""
        deadline = time.monotonic() + timeout
        while (state := self.job_field(job_id, "JobState")) in ("PENDING", "RUNNING", "COMPLETING"):
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
        return state


def missing_slurm_tools() -> list[str]:
    return [tool for tool in SLURM_TOOLS if shutil.which(tool) is None]


def _set_env(values: dict[str, str]) -> dict[str, str | None]:
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    return old


def _restore_env(old: dict[str, str | None]) -> None:
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[LocalCluster]:
    """munged, slurmctld and two slurmd (n1, n2) for the whole session, from the project script,
    in a temp folder.

    Skips only when the SLURM or munge binaries are absent (``make test`` installs them).
    """
    missing = missing_slurm_tools()
    if missing:
        pytest.skip(f"SLURM not installed (missing {', '.join(missing)}; scripts/install-system-deps.sh)")
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster needs root (munged runs as user munge)")
    # Under /tmp, not pytest's 0700 tmp folders: the munge user must reach its own files.
    state = Path(tempfile.mkdtemp(prefix="fvc-slurm-"))
    started = subprocess.run([str(SLURM_LOCAL), "up", str(state)], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "FVC_SLURM_NODES": str(len(NODES))})
    if started.returncode != 0:
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted((state / "log").glob("*.log")))
        subprocess.run([str(SLURM_LOCAL), "down", str(state)], capture_output=True, timeout=120)
        raise RuntimeError(f"slurm-local.sh up failed:\n{started.stdout}{started.stderr}\n{logs}")
    old = _set_env({"SLURM_CONF": str(state / "slurm.conf")})
    try:
        yield LocalCluster(state, state / "slurm.conf")
    finally:
        subprocess.run([str(SLURM_LOCAL), "down", str(state)], capture_output=True, timeout=120)
        _restore_env(old)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_env() -> Iterator[dict[str, str]]:
    """A PostgreSQL server for the session from the project script (stopped by its pid):
    the DAGSTER_PG_* variables and MLFLOW_TRACKING_URI it prints, as a dict."""
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.skip("PostgreSQL server not installed (scripts/install-system-deps.sh)")
    state = Path(tempfile.mkdtemp(prefix="fvc-pg-"))
    started = subprocess.run([str(POSTGRES_LOCAL), "up", str(state)], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "FVC_PG_PORT": "15432"})
    try:
        if started.returncode != 0:
            raise RuntimeError(f"postgres-local.sh up failed:\n{started.stdout}{started.stderr}")
        values = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines()
                      if line.startswith("export "))
        yield values
    finally:
        subprocess.run([str(POSTGRES_LOCAL), "down", str(state)], capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


@dataclass(frozen=True)
class SlurmEnv:
    home: Path
    data: Path
    partition_key: str


@pytest.fixture(scope="module")
def slurm_env(slurm_cluster) -> Iterator[SlurmEnv]:
    """A DAGSTER_HOME (the project's dagster.yaml) and FVC_DATA_DIR with one registered video.

    Set in os.environ for the whole module: every run the tests start, and every
    SLURM job those runs submit (sbatch --export=ALL), sees the same instance and data.
    """
    import dagster as dg
    from fvc_assets.ingest.registration import register_new_videos
    from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME
    from tests.conftest import encode_video

    root = Path(tempfile.mkdtemp(prefix="fvc-slurm-env-"))
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    (data / "inbox" / "fake").mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    old = _set_env({"DAGSTER_HOME": str(home), "FVC_DATA_DIR": str(data)})
    try:
        encode_video(data / "inbox" / "fake" / "slurm clip.mp4", frames=12, width=96, height=64)
        registered, _ = register_new_videos(data / "inbox", data / "registry")
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, [r.key for r in registered])
        yield SlurmEnv(home, data, registered[0].key)
    finally:
        _restore_env(old)
        shutil.rmtree(root, ignore_errors=True)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    """Poll until ``predicate()`` returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
