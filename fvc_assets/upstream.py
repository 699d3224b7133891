"""Reading what an upstream partition wrote, with a clear failure when it is not there."""

from pathlib import Path

import dagster as dg


def require_upstream(path: Path, upstream: str, key: str) -> Path:
    """``path`` if it exists; else a step failure that names the file and the asset to run first."""
    if not path.exists():
        raise dg.Failure(description=f"{path}: {upstream} has not been materialised for {key!r}")
    return path
