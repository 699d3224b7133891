"""Many videos per run: which videos go together, and when to batch at all (pure).

Dagster runs a partitioned asset over one partition or over a *range* of consecutive partitions
(the ``videos`` partitions in the order they were added), never over an arbitrary set. So the videos
to run are cut where the partition order has a gap (a video that is up to date, or that failed in
an earlier stage), and each stretch of consecutive ones into batches of at most ``size``, of
near-equal length. A bulk arrival is registered together, so its videos are consecutive: N
videos give ceil(N / size) batches per stage.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_BATCH_SIZE = 50
DEFAULT_BATCH_ABOVE = 20


@dataclass(frozen=True)
class Batching:
    """More than ``above`` videos to run go in batches of at most ``size`` (``fvc run``, the inbox sensor)."""

    size: int = DEFAULT_BATCH_SIZE
    above: int = DEFAULT_BATCH_ABOVE

    def __post_init__(self):
        if self.size < 1 or self.above < 0:
            raise ValueError(f"batch size must be at least 1 and the threshold at least 0, got {self.size}, {self.above}")

    def applies(self, videos: int) -> bool:
        return self.size > 1 and videos > self.above


def consecutive_stretches(order: list[str], keys: Iterable[str]) -> list[list[str]]:
    """``keys`` in ``order``'s order, cut wherever ``order`` has a key in between that is not in ``keys``."""
    wanted = set(keys)
    unknown = wanted - set(order)
    if unknown:
        raise ValueError(f"not partitions: {sorted(unknown)[:5]}")
    stretches: list[list[str]] = []
    current: list[str] = []
    for key in order:
        if key in wanted:
            current.append(key)
        elif current:
            stretches.append(current)
            current = []
    if current:
        stretches.append(current)
    return stretches


def contiguous_batches(order: list[str], keys: Iterable[str], size: int, at_least: int = 1) -> list[list[str]]:
    """Batches of consecutive partitions (in ``order``) covering ``keys``: each stretch of consecutive
    keys cut into ceil(len / size) batches of near-equal length. With ``at_least`` (the runs the queue
    starts side by side), batches are made smaller until there are that many, so that a stage of a
    few dozen videos still keeps every run slot busy."""
    keys = list(keys)
    size = max(1, min(size, math.ceil(len(keys) / max(at_least, 1)))) if keys else size
    batches = []
    for stretch in consecutive_stretches(order, keys):
        count = math.ceil(len(stretch) / size)
        bounds = [round(i * len(stretch) / count) for i in range(count + 1)]
        batches += [stretch[a:b] for a, b in zip(bounds, bounds[1:])]
    return batches
