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


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_phases_split_a_step_and_a_nested_phase_is_not_counted_twice():
    from fvc_core.step_cost import phase

    with phase("outside"):  # no measurement under way: nothing recorded anywhere
        pass
    with measure_cost() as cost:
        with phase("kernel"):
            burn(0.2)
            with phase("probing"):
                burn(0.1)
            burn(0.1)
        with phase("checks"):
            time.sleep(0.15)  # wall, not CPU
        burn(0.05)  # the rest
    kernel_wall, kernel_cpu = cost.phases["kernel"]
    probing_wall, probing_cpu = cost.phases["probing"]
    checks_wall, checks_cpu = cost.phases["checks"]
    assert 0.28 < kernel_cpu < 0.4 and 0.08 < probing_cpu < 0.15
    assert checks_wall >= 0.15 and checks_cpu < 0.05
    figures = cost.as_metadata()["cost/phases"]
    assert figures["rest"]["cpu_s"] == pytest.approx(cost.cpu_s - kernel_cpu - probing_cpu - checks_cpu, abs=0.011)
    assert 0.03 < figures["rest"]["cpu_s"] < 0.12
    assert sum(figures[p]["wall_s"] for p in ("kernel", "probing", "checks", "rest")) == pytest.approx(
        cost.wall_s, abs=0.03)
    assert set(figures) == {"kernel", "probing", "checks", "rest"}


def test_a_steps_metadata_is_stored_once_on_its_materialisation():
    import dagster as dg

    from fvc_assets.steps.step_cost import reports_cost

    @dg.asset
    @reports_cost
    def measured(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"rows": 3, "note": "x" * 2000})

    result = dg.materialize([measured])
    [materialisation] = result.asset_materializations_for_node("measured")
    assert materialisation.metadata["rows"].value == 3 and materialisation.metadata["cost/wall_s"].value >= 0
    outputs = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    assert outputs and all(not e.event_specific_data.metadata for e in outputs)
