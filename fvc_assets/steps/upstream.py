"""Reading what an upstream partition wrote, with a clear failure when it is not there."""

from pathlib import Path

import dagster as dg


def require_upstream(path: Path, upstream: str, key: str) -> Path:
    """``path`` if it exists; else a step failure that names the file and the asset to run first."""
    if not path.exists():
        raise dg.Failure(description=f"{path}: {upstream} has not been materialised for {key!r}")
    return path


def table_version(table) -> dg.DataVersion:
    """The data version of a partition's output table: a hash of its values (stages are deterministic,
    so re-running an unchanged video gives the same version and automation sees nothing new)."""
    import hashlib
    import json

    text = json.dumps(table.to_dicts(), sort_keys=True, default=str)  # nested columns too (cascade_ids)
    return dg.DataVersion(hashlib.sha256(text.encode()).hexdigest()[:16])


def files_version(*paths) -> str:
    """A hash of files' bytes: the data version of an asset whose output is those files."""
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
