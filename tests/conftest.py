"""Shared fixtures: real encoded videos, and a temporary Dagster instance + data root."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from fractions import Fraction
from pathlib import Path

from fvc_resources.run_launcher import THREAD_VARIABLES  # loads none of the libraries it names

# Each pytest-xdist worker gets its share of the cores for the libraries' thread pools (torch, OpenMP,
# BLAS, polars), set before any of them loads, as the run launcher sets them for each run; the runs a
# test starts inherit it. Two workers each spinning two OpenMP threads on two cores made torch-bound
# tests 3-5 times slower than alone.
WORKER_THREADS = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
if "PYTEST_XDIST_WORKER" in os.environ:
    for _variable in THREAD_VARIABLES:
        os.environ.setdefault(_variable, str(WORKER_THREADS))

import numpy as np
import pytest

# Pipeline tests check that every step runs and records what it should, not what the networks learn
# (tests/test_learnability.py does): the "smoke" profile trains the demo's networks for one epoch. Every
# `fvc run`, daemon and code server the tests start inherits it; a test may still set its own.
os.environ.setdefault("FVC_TRAINING_PROFILE", "smoke")

# The suite runs on two pytest-xdist workers (`-n 2`): while one waits (on SLURM, a daemon's tick, a run
# monitor's poll) the other computes (three were slower: 38 min 40 s against 33 min 30 s). Each worker has its
# own session, so the modules that share a session fixture go to one worker together (SHARED_SESSIONS): the
# SLURM cluster, PostgreSQL and the local demo run; the `dagster dev` of tests/ui_server.py. Every other module
# goes whole to whichever worker is free, so its module fixtures are made once.
SHARED_SESSIONS = {
    "cluster": ("test_cluster_e2e.py", "test_training_e2e.py", "test_slurm_executor.py", "test_shell_names.py",
                "test_listening.py"),
    "ui": ("test_ui_e2e.py", "test_browser.py"),
}


def pytest_xdist_make_scheduler(config, log):
    """xdist's scope scheduling with SHARED_SESSIONS as scopes (its own `xdist_group` marks do not take
    under pytest 9: they rename node ids through an attribute pytest 9 no longer reads)."""
    from xdist.scheduler import LoadScopeScheduling

    group_of = {module: group for group, modules in SHARED_SESSIONS.items() for module in modules}

    class SharedSessionScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return group_of.get(Path(module).name, module)

    return SharedSessionScheduling(config, log)


# One local SLURM cluster for the whole session, whichever modules use it.
from tests.demo_run import demo_corpus, demo_run  # noqa: E402,F401 (fixtures)
from tests.slurm_fixtures import postgres_env, slurm_cluster, slurm_env  # noqa: E402,F401 (fixtures)

REPO_ROOT = Path(__file__).resolve().parent.parent
FVC_CORPUS_DIR = Path(os.environ.get("FVC_CORPUS_DIR", REPO_ROOT.parent / "shared" / "fvc-corpus"))


def synthetic_frames(n: int, width: int, height: int, seed: int = 0):
    """Frames with a moving gradient and noise, so encoders have real content to code."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    for i in range(n):
        base = ((xs + 3 * i) % 256).astype(np.uint8)
        frame = np.stack([base, ((ys + i) % 256).astype(np.uint8), np.full_like(base, (7 * i) % 256)], -1)
        frame = np.clip(frame.astype(np.int16) + rng.integers(-6, 7, frame.shape), 0, 255).astype(np.uint8)
        yield frame


def encode_video(path: Path, *, frames=30, width=320, height=240, fps=25, codec="libx264", options=None, seed=0):
    """Encode a real video with PyAV; returns the path."""
    from fvc_resources.video import write_clip

    write_clip(path, synthetic_frames(frames, width, height, seed), Fraction(fps), codec=codec, options=options)
    return path


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for the servers the tests start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture
def fvc_env(tmp_path, monkeypatch):
    """A fresh DAGSTER_HOME (the project's dagster.yaml) and FVC_DATA_DIR for one test."""
    home = tmp_path / "dagster_home"
    data = tmp_path / "data"
    home.mkdir()
    (data / "inbox").mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FVC_DATA_DIR", str(data))
    return home, data


@pytest.fixture
def fvc_corpus_dir() -> Path:
    if not (FVC_CORPUS_DIR / "FVC.csv").exists():
        pytest.skip(f"FVC manifests not found at {FVC_CORPUS_DIR} (set FVC_CORPUS_DIR)")
    return FVC_CORPUS_DIR
