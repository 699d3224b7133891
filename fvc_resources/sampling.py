"""How many frames feature stages sample per clip: one place, shown in the UI."""

import dagster as dg
from pydantic import Field

from fvc_core.sampling import frames_to_sample


class FrameSamplingResource(dg.ConfigurableResource):
    """A fraction of each clip's frames clamped to [min_frames, max_frames], or a fixed count."""

    fraction: float = Field(default=0.10, gt=0, le=1, description="Share of a clip's frames to sample.")
    min_frames: int = Field(default=5, ge=1)
    max_frames: int = Field(default=50, ge=1)
    fixed_count: int | None = Field(default=None, ge=1, description="Sample exactly this many (overrides the rest).")

    def count(self, total_frames: int) -> int:
        return frames_to_sample(total_frames, self.fraction, self.min_frames, self.max_frames, self.fixed_count)
