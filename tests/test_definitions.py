"""The code location loads, validates, and exposes what the UI shows."""

import os
import subprocess
import sys

import dagster as dg

from tests.conftest import REPO_ROOT


def test_definitions_validate_from_repo_root(fvc_env):
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful for code location fvc" in result.stdout + result.stderr


def test_raw_videos_is_partitioned_by_videos_and_the_sensor_targets_it():
    from fvc_assets.definitions import defs

    asset = defs.resolve_assets_def("raw_videos")
    assert isinstance(asset.partitions_def, dg.DynamicPartitionsDefinition)
    assert asset.partitions_def.name == "videos"
    sensor = defs.resolve_sensor_def("inbox_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.job_name == "video_pipeline"
    job = defs.resolve_job_def("video_pipeline")
    assert dg.AssetKey("raw_videos") in job.asset_layer.executable_asset_keys


def test_definitions_import_stays_light():
    """Every step, sensor tick and UI load imports this module: no torch/diffusers/timm at import."""
    code = (
        "import sys, time; t = time.perf_counter(); import fvc_assets.definitions; "
        "print(time.perf_counter() - t); "
        "print(sorted(m for m in ('torch', 'diffusers', 'timm', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[1] == "[]"


def test_gpu_pool_limit_is_one(fvc_env):
    from fvc_assets.runner import GPU_POOL, ensure_pools

    instance = dg.DagsterInstance.get()
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    ensure_pools(instance)
    assert instance.event_log_storage.get_concurrency_info(GPU_POOL).slot_count == 1
