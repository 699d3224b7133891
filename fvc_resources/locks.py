"""One writer per output: an exclusive, non-blocking lock file per asset partition.

Two runs materialising the same partition at once would interleave their writes
(and one would sweep the other's temp files). The second run fails at once with
the holder's run id instead. ``flock`` locks die with their process, so a
killed step never leaves a stale lock behind. On a cluster the data root's file
system must support ``flock`` (local disks and NFSv4 do).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class OutputBusy(RuntimeError):
    """Another process holds the output's lock."""


@contextmanager
def exclusive_writer(lock_path: str | os.PathLike, holder: str, what: str) -> Iterator[None]:
    """Hold ``lock_path`` for the block, or raise OutputBusy naming ``what`` and the current holder."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            current = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
            raise OutputBusy(
                f"{what} is being written by another run ({current}); "
                f"wait for it to finish, then run this partition again"
            ) from None
        # Write, then cut to length: a reader never sees the file empty between the two.
        data = holder.encode()
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        yield
    finally:
        os.close(fd)  # releases the lock
