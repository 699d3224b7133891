"""Atomic file writes: write beside the target, then rename over it.

A killed writer leaves either the previous file or none, never a half file.
Temp names start with '.' and contain '.tmp-' so readers and globs skip them.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
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
        _crash_point(target)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


# Crash tests (tests/test_crash_resume.py) set FVC_KILL_BEFORE_RENAME="<file name pattern>[#n]" in a
# step's environment: the n-th write of a matching file SIGKILLs the process after its temp file is
# written and before the rename, the last moment before the output becomes visible. Unset: no effect.
CRASH_POINT_ENV = "FVC_KILL_BEFORE_RENAME"
_crash_hits: dict[str, int] = {}


def _crash_point(target: Path) -> None:
    spec = os.environ.get(CRASH_POINT_ENV)
    if not spec:
        return
    pattern, _, nth = spec.partition("#")
    if fnmatch.fnmatch(target.name, pattern):
        _crash_hits[pattern] = _crash_hits.get(pattern, 0) + 1
        if _crash_hits[pattern] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


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


def remove_stale_temps(*outputs: str | os.PathLike) -> list[Path]:
    """Delete temp files a killed writer left beside ``outputs`` (files, or folders of files).

    Only safe while holding the outputs' writer lock: a live writer's temp file looks the same.
    """
    removed = []
    for output in map(Path, outputs):
        if output.is_dir():
            candidates = output.glob(".*.tmp-*")
        else:
            candidates = output.parent.glob(f".{output.stem}.tmp-*{output.suffix}")
        for temp in candidates:
            temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed
