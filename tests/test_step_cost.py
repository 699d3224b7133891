"""A step's own cost: wall and CPU seconds, and its own peak RSS even after a larger step in the same process."""

import time

import numpy as np
import pytest

from fvc_core.step_cost import measure_cost


def test_peak_rss_is_the_steps_own_and_cpu_and_wall_add_up():
    with measure_cost() as big:
        block = np.ones((300, 1024, 1024 // 8))  # 300 MB touched
        block.sum()
        del block
    with measure_cost() as small:
        time.sleep(0.2)
    if not big.peak_is_own:
        pytest.skip("this kernel refuses to reset the peak RSS (/proc/self/clear_refs)")
    assert big.peak_rss_mb - small.peak_rss_mb > 250  # the second step does not inherit the first one's peak
    assert big.cpu_s > 0.05 and small.cpu_s < 0.1
    assert small.wall_s >= 0.2 and small.wall_s - small.cpu_s > 0.15  # waiting is wall time, not CPU time
    assert set(small.as_metadata()) == {"cost/wall_s", "cost/cpu_s", "cost/peak_rss_mb"}
