"""What a step cost: wall seconds, CPU seconds and peak resident memory (pure; Linux /proc).

Peak RSS is the process's high-water mark (VmHWM), reset when the measurement
starts (``/proc/self/clear_refs``, Linux >= 4.0), so a step that runs after
another in the same process reports its own peak, not the earlier one's; where
the reset is refused, the figure is the process's peak so far and says so.
CPU seconds add this process's threads and any child processes that ended.

Inside a measurement, ``with phase("checks"): ...`` charges the time of a part of the step to that
phase (wall and CPU): the kernel, checks, previews, probing clips, writing tables. Phases nest; time
goes to the innermost one open, so a probe inside the kernel counts as probing, not twice. What no
phase covers is the step's rest. Outside a measurement ``phase`` does nothing.
"""

from __future__ import annotations

import resource
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
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


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time() + _children_cpu()


@dataclass
class StepCost:
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float | None = None
    peak_is_own: bool = True  # False: the reset was refused, the peak may be an earlier step's
    phases: dict[str, list[float]] = field(default_factory=dict)  # phase -> [wall s, CPU s]
    _open: list[str] = field(default_factory=list)
    _mark: tuple[float, float] = (0.0, 0.0)

    def _charge(self) -> None:
        """The time since the last mark, to the innermost open phase."""
        wall, cpu = _now()
        if self._open:
            spent = self.phases.setdefault(self._open[-1], [0.0, 0.0])
            spent[0] += wall - self._mark[0]
            spent[1] += cpu - self._mark[1]
        self._mark = (wall, cpu)

    def as_metadata(self) -> dict[str, float | bool | dict]:
        out = {"cost/wall_s": round(self.wall_s, 2), "cost/cpu_s": round(self.cpu_s, 2)}
        if self.peak_rss_mb is not None:
            out["cost/peak_rss_mb"] = round(self.peak_rss_mb, 1)
        if not self.peak_is_own:
            out["cost/peak_rss_is_process_peak"] = True
        if self.phases:
            # One entry for the split (a JSON value, shown as a table): each metadata entry costs the event
            # log about 100 bytes of envelope beside its value, per video and asset.
            phases = {name: {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}
                      for name, (wall, cpu) in sorted(self.phases.items())}
            phases["rest"] = {"wall_s": round(self.wall_s - sum(w for w, _ in self.phases.values()), 2),
                              "cpu_s": round(self.cpu_s - sum(c for _, c in self.phases.values()), 2)}
            out["cost/phases"] = phases
        return out


_measuring: ContextVar[StepCost | None] = ContextVar("fvc_step_cost", default=None)


@contextmanager
def phase(name: str):
    """Charge the enclosed time to ``name`` in the measurement under way (nothing outside one)."""
    cost = _measuring.get()
    if cost is None:
        yield
        return
    cost._charge()
    cost._open.append(name)
    try:
        yield
    finally:
        cost._charge()
        cost._open.pop()


class measure_cost:
    """``with measure_cost() as cost: ...`` then ``cost`` holds the figures."""

    def __enter__(self) -> StepCost:
        self.cost = StepCost(peak_is_own=_reset_peak())
        self._wall, self._cpu, self._children = time.perf_counter(), time.process_time(), _children_cpu()
        self._token = _measuring.set(self.cost)
        return self.cost

    def __exit__(self, *exc) -> None:
        _measuring.reset(self._token)
        self.cost.wall_s = time.perf_counter() - self._wall
        self.cost.cpu_s = time.process_time() - self._cpu + _children_cpu() - self._children
        peak = _status_kb("VmHWM")
        self.cost.peak_rss_mb = peak / 1024 if peak is not None else None
