"""Atomic file writes: write beside the target, then rename over it.

A killed writer leaves either the previous file or none, never a half file.
Temp names start with '.' and contain '.tmp-' so readers and globs skip them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path in the target's folder (same suffix); rename it over the target on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.tmp-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if not tmp_path.exists() or tmp_path.stat().st_size == 0:
            raise OSError(f"{target}: writer produced no data")
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_json_atomic(target: str | os.PathLike, obj) -> Path:
    return write_bytes_atomic(target, json.dumps(obj, indent=2, sort_keys=True).encode())


def write_parquet_atomic(target: str | os.PathLike, frame) -> Path:
    """Write a polars DataFrame as parquet, atomically."""
    with atomic_path(target) as tmp:
        frame.write_parquet(tmp)
    return Path(target)
