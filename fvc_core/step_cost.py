"""What a step cost: wall seconds, CPU seconds and peak resident memory (pure; Linux /proc).

Peak RSS is the process's high-water mark (VmHWM), reset when the measurement
starts (``/proc/self/clear_refs``, Linux >= 4.0), so a step that runs after
another in the same process reports its own peak, not the earlier one's; where
the reset is refused, the figure is the process's peak so far and says so.
CPU seconds add this process's threads and any child processes that ended.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class StepCost:
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float | None = None
    peak_is_own: bool = True  # False: the reset was refused, the peak may be an earlier step's

    def as_metadata(self) -> dict[str, float | bool]:
        out = {"cost/wall_s": round(self.wall_s, 2), "cost/cpu_s": round(self.cpu_s, 2)}
        if self.peak_rss_mb is not None:
            out["cost/peak_rss_mb"] = round(self.peak_rss_mb, 1)
        if not self.peak_is_own:
            out["cost/peak_rss_is_process_peak"] = True
        return out


class measure_cost:
    """``with measure_cost() as cost: ...`` then ``cost`` holds the figures."""

    def __enter__(self) -> StepCost:
        self.cost = StepCost(peak_is_own=_reset_peak())
        self._wall, self._cpu, self._children = time.perf_counter(), time.process_time(), _children_cpu()
        return self.cost

    def __exit__(self, *exc) -> None:
        self.cost.wall_s = time.perf_counter() - self._wall
        self.cost.cpu_s = time.process_time() - self._cpu + _children_cpu() - self._children
        peak = _status_kb("VmHWM")
        self.cost.peak_rss_mb = peak / 1024 if peak is not None else None
