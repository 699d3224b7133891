"""Progress lines for long steps, at most one per interval, from pure code (no dagster)."""

from __future__ import annotations

import time
from collections.abc import Callable


class Throttled:
    """Passes a message on to ``log`` when ``every_s`` seconds have passed since the last one;
    ``log`` None makes it a no-op, so pure code can take one without caring who listens."""

    def __init__(self, log: Callable[[str], None] | None, every_s: float = 10.0, clock=time.monotonic):
        self.log, self.every_s, self.clock = log, every_s, clock
        self.started = self.last = clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def __call__(self, message: Callable[[], str]) -> None:
        """``message`` is built only when it will be logged."""
        if self.log is None:
            return
        now = self.clock()
        if now - self.last >= self.every_s:
            self.last = now
            self.log(message())
