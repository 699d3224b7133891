"""Exclusive file locks for MLflow's sqlite store: sqlite allows one writer, and parallel steps would meet
"database is locked". (No dagster import: ``fvc serve`` and ``fvc model`` use it too.)"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager, nullcontext
from pathlib import Path


def store_lock(uri: str):
    """An exclusive lock beside a sqlite store (every writer takes it); nothing for other stores."""
    if not uri.startswith("sqlite:///"):
        return nullcontext()
    return file_lock(Path(uri.removeprefix("sqlite:///")).with_suffix(".lock"))


@contextmanager
def file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
