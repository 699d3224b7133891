"""The code location loads, validates, and exposes what the UI shows."""

import os
import subprocess
import sys

import dagster as dg
import pytest

from fvc_assets.deployment import resources as deployment_resources
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
    # One run per video, or a batch's first stage (batch_stages requests the rest).
    assert {job.name for job in sensor.jobs} == {"video_pipeline", "ingest", "augment", "scale", "features"}
    assert {job.name for job in defs.resolve_sensor_def("batch_stages").jobs} == {"ingest", "augment", "scale",
                                                                                  "features"}
    job = defs.resolve_job_def("video_pipeline")
    assert dg.AssetKey("raw_videos") in job.asset_layer.executable_asset_keys


def test_definitions_import_stays_light():
    """Every step, sensor tick and UI load imports this module: no torch/diffusers/timm at import."""
    code = (
        "import sys, time; t = time.perf_counter(); import fvc_assets.definitions; "
        "print(time.perf_counter() - t); "
        "print(sorted(m for m in ('torch', 'diffusers', 'timm', 'mlflow', 'sklearn', 'xgboost', 'duckdb', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[1] == "[]"


def test_gpu_pool_limit_is_one(fvc_env):
    from fvc_assets.launch.inbox import GPU_POOL, ensure_pools

    instance = dg.DagsterInstance.get()
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    ensure_pools(instance)
    assert instance.event_log_storage.get_concurrency_info(GPU_POOL).slot_count == 1


def test_stage5_assets_partitions_and_jobs():
    from fvc_assets.definitions import defs

    fold_results = defs.resolve_assets_def("fold_results")
    partitions = fold_results.partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    assert {d.name for d in partitions.partitions_defs} == {"model", "fold"}
    keys = partitions.get_partition_keys()
    assert len(keys) == 8 * 5  # the base models; the ensemble is its own asset, one partition per fold
    assert dg.MultiPartitionKey({"model": "x3d", "fold": "4"}) in keys
    assert not any(k.keys_by_dimension["model"] == "ensemble" for k in keys)
    ensemble = defs.resolve_assets_def("ensemble_results")
    assert ensemble.partitions_def.get_partition_keys() == ["0", "1", "2", "3", "4"]
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("fold_results") in graph.get(dg.AssetKey("ensemble_results")).parent_keys
    assert {dg.AssetKey("fold_results"), dg.AssetKey("ensemble_results")} <= \
        graph.get(dg.AssetKey("model_comparison")).parent_keys
    assert [spec.name for spec in defs.resolve_assets_def("folds").check_specs] == ["no_leakage"]
    assert next(iter(defs.resolve_assets_def("folds").check_specs)).blocking
    for job in ("catalog", "train", "ensemble", "compare", "promote"):
        defs.resolve_job_def(job)
    # The promotion gate holds the champion back: blocking, on the candidate, upstream of the alias.
    [gate] = [key for key in graph.asset_check_keys if key.asset_key == dg.AssetKey("deployed_model")]
    assert gate.name == "beats_control_and_champion" and graph.get_check_spec(gate).blocking
    assert graph.get(dg.AssetKey("champion_model")).parent_keys == {dg.AssetKey("deployed_model")}


def test_extra_models_join_the_model_dimension_by_configuration():
    code = "from fvc_assets.partitions import MODELS; print(' '.join(MODELS))"
    env = {**os.environ, "FVC_EXTRA_MODELS": "r2plus1d,i3d"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split()[-2:] == ["r2plus1d", "i3d"] and len(out.stdout.split()) == 11
    bad = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env={**os.environ, "FVC_MODELS": "resnet9000"},
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown model 'resnet9000'" in bad.stderr


def test_resources_take_the_environment_through_dagster_config_at_run_time(monkeypatch, tmp_path):
    """Values come from dg.EnvVar (visible as such in the UI), resolved by each process when it
    initialises the resources, so one loaded definitions object follows the run's environment."""
    from fvc_assets.definitions import defs

    storage = defs.resources["storage"]
    assert storage.data_dir == dg.EnvVar("FVC_DATA_DIR")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FVC_DATA_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("FVC_TRAINING_PROFILE", "full")
    profile = {**defs.resources, "training": deployment_resources()["training"]}
    with dg.DagsterInstance.get() as instance, dg.build_resources(profile, instance=instance) as built:
        assert built.storage.root == tmp_path / "a"
        assert built.tracking.uri == f"sqlite:///{home / 'mlflow.db'}"  # beside the run's instance
        assert built.training.settings().backbone == "vit_base_patch16_224"
    monkeypatch.setenv("FVC_DATA_DIR", str(tmp_path / "b"))
    monkeypatch.delenv("FVC_TRAINING_PROFILE")
    with dg.build_resources({**defs.resources, "training": deployment_resources()["training"]}) as built:
        assert built.storage.root == tmp_path / "b"
        assert built.training.settings().backbone == "vit_tiny_patch16_224"
        with pytest.raises(RuntimeError, match="no tracking_uri and no persistent Dagster instance"):
            built.tracking.uri


def test_an_unset_data_root_fails_naming_the_variable(monkeypatch):
    from fvc_assets.definitions import defs

    monkeypatch.delenv("FVC_DATA_DIR", raising=False)
    with pytest.raises(Exception, match="FVC_DATA_DIR"):
        with dg.build_resources({"storage": defs.resources["storage"]}):
            pass


def test_only_the_deployment_module_reads_the_environment():
    """Resources, the executor and pure code take config; os.environ is read where the definitions
    are built (fvc_assets/deployment.py), by the command line that sets it up, and by process plumbing."""
    import re

    allowed = {
        "fvc_assets/deployment.py",  # the deployment's choices
        "fvc_assets/launch/environment.py", "fvc_assets/cli.py",  # the command line sets DAGSTER_HOME / FVC_DATA_DIR
        "fvc_assets/launch/command.py", "fvc_assets/launch/daemon.py", "fvc_assets/launch/queue_daemon.py",
        "fvc_resources/run_host.py", "fvc_resources/run_launcher.py",  # thread caps for worker processes
        "fvc_resources/slurm/step_handler.py",  # the environment handed on to each SLURM job
        "fvc_resources/atomic.py",  # the tests' crash-point hook
    }
    readers = {str(path.relative_to(REPO_ROOT)) for package in ("fvc_assets", "fvc_resources", "fvc_core")
               for path in (REPO_ROOT / package).rglob("*.py")
               if re.search(r"os\.environ|os\.getenv", path.read_text())}
    assert readers <= allowed, sorted(readers - allowed)


def test_layers_point_one_way():
    """fvc_assets (Dagster) -> fvc_resources -> fvc_core: nothing below imports what is above it."""
    import ast

    def imported(package: str) -> dict[str, set[str]]:
        found = {}
        for path in (REPO_ROOT / package).rglob("*.py"):
            names = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
            found[str(path.relative_to(REPO_ROOT))] = names
        return found

    resources = {f: n & {"fvc_assets"} for f, n in imported("fvc_resources").items() if n & {"fvc_assets"}}
    core = {f: n & {"fvc_assets", "fvc_resources", "dagster"} for f, n in imported("fvc_core").items()
            if n & {"fvc_assets", "fvc_resources", "dagster"}}
    assert resources == {} and core == {}, (resources, core)



# The pure computation docs/development.md names: no Dagster in it, so it runs and is tested without a run.
PURE_MODULES = ("fvc_resources/video.py", "fvc_assets/ingest/manifest.py", "fvc_assets/ingest/groups.py",
                "fvc_assets/augment/transforms.py", "fvc_assets/features/handcrafted.py",
                "fvc_assets/features/scaled.py", "fvc_assets/scale/letterbox.py", "fvc_assets/train/folds.py",
                "fvc_assets/train/metrics.py", "fvc_assets/train/fold_training.py", "fvc_assets/train/models/*.py",
                "fvc_assets/demo/*.py", "fvc_core/*.py")


def test_pure_computation_never_imports_dagster():
    import ast

    files = sorted({path for pattern in PURE_MODULES for path in REPO_ROOT.glob(pattern)})
    assert len(files) > 25
    importers = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            if any(name.split(".")[0] in ("dagster", "dagster_shared", "dagster_mlflow") for name in names):
                importers.append(str(path.relative_to(REPO_ROOT)))
    assert importers == [], importers

def test_each_stage5_asset_lives_in_a_module_named_for_it():
    """A newcomer finds an asset by its name: the module that defines it says what it holds."""
    from fvc_assets.definitions import defs

    where = {key.to_user_string(): defs.resolve_assets_def(key).op.compute_fn.decorated_fn.__module__
             for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert where["video_catalog"] == "fvc_assets.train.catalog_assets"
    assert where["folds"] == "fvc_assets.train.folds_assets"
    assert where["fold_results"] == where["ensemble_results"] == "fvc_assets.train.training_assets"
    assert where["model_comparison"] == "fvc_assets.train.comparison_assets"
    assert where["cross_manipulation"] == "fvc_assets.train.cross_manipulation_assets"


def test_the_top_of_fvc_assets_holds_only_the_wiring_and_the_commands():
    """Step helpers live in fvc_assets/steps/, each stage in its room; what stays at the top is what a
    Dagster user looks for (definitions, deployment, partitions, jobs, automation) and the two commands."""
    top = {path.stem for path in (REPO_ROOT / "fvc_assets").glob("*.py")}
    assert top == {"__init__", "definitions", "deployment", "partitions", "jobs", "automation", "cli", "predict"}
    steps = {path.stem for path in (REPO_ROOT / "fvc_assets" / "steps").glob("*.py")}
    assert steps == {"__init__", "per_video", "sole_writer", "step_cost", "table_metadata", "upstream"}
