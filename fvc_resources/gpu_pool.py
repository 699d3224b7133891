"""Holding the instance's ``gpu`` pool while, and only while, a step puts work on a GPU.

Dagster's ``pool=`` is fixed on an asset's definition, but whether a step uses a
GPU is known only when it runs: ``scaled_videos`` does with the autoencoder
method on CUDA and not with letterbox; a deep model does on CUDA and not on a
CPU-only machine; the feature models never do. So the steps that may use a GPU
claim a slot of the same pool (same limit, same view in the UI's concurrency
page) through the instance when they are about to, and give it back after. A
killed step's slot is freed by run monitoring once its run has ended, as for
``pool=``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

GPU_POOL = "gpu"


@contextmanager
def holding_gpu_pool(instance, run_id: str, step_key: str, log: Callable[[str], None] | None = None,
                     pool: str = GPU_POOL) -> Iterator[None]:
    """Wait for a slot of ``pool`` (the instance's limit; 1 on this platform), hold it, free it."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        yield
        return
    waited_since = time.monotonic()
    announced = False
    while True:
        status = storage.claim_concurrency_slot(pool, run_id, step_key)
        if status.is_claimed:
            break
        if log and not announced:
            log(f"waiting for a slot of the {pool!r} pool (another step is using the GPU)")
            announced = True
        time.sleep(min(max(status.sleep_interval or 1.0, 0.5), 5.0))
    if log and announced:
        log(f"got the {pool!r} pool after {time.monotonic() - waited_since:.1f}s")
    try:
        yield
    finally:
        storage.free_concurrency_slot_for_step(run_id, step_key)
