"""``batching``: when many videos wait, run them many per run (``fvc run`` and the inbox sensor)."""

from pydantic import Field

import dagster as dg
from fvc_core.batches import DEFAULT_BATCH_ABOVE, DEFAULT_BATCH_SIZE, Batching


class BatchingPolicy(dg.ConfigurableResource):
    """More than ``above`` videos waiting run as batches: one run per stage over up to ``size``
    consecutive videos, instead of one run per video. Fewer run one run each (a trickle: each
    video's result comes as soon as its own run ends)."""

    size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1,
                      description="Videos per batch run (1: never batch). On SLURM a batch's step is one job "
                                  "that runs its videos one after another: size slurm/time for the batch.")
    above: int = Field(default=DEFAULT_BATCH_ABOVE, ge=0,
                       description="Batch when more than this many videos are waiting.")

    def policy(self) -> Batching:
        return Batching(size=self.size, above=self.above)
