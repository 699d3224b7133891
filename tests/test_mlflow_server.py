"""MLflow as a tracking server (as on a cluster): dagster-mlflow's resource carries each fold's run.

A real ``mlflow server`` (sqlite backend, artifacts served) on 127.0.0.1, started and stopped
by pid; the definitions' resources built with ``MLFLOW_TRACKING_URI`` pointing at it.
"""

import os
import subprocess
import sys
import time
import urllib.request

import dagster as dg
import pytest

from tests.conftest import free_port
from tests.train_data import synthetic_catalog

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    log = tmp_path / "mlflow-server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
             "--artifacts-destination", str(tmp_path / "server-artifacts")],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def test_fold_runs_go_to_the_tracking_server_through_dagster_mlflow(mlflow_server, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from fvc_assets import deployment
    from fvc_assets.train.training_assets import fold_results
    from fvc_resources.tracking import SERVER_EXPERIMENT

    data = tmp_path / "data"
    (data / "catalog").mkdir(parents=True)
    catalog, folds = synthetic_catalog()
    catalog.write_parquet(data / "catalog" / "video_catalog.parquet")
    folds.write_parquet(data / "catalog" / "folds.parquet")
    monkeypatch.setenv("FVC_DATA_DIR", str(data))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    resources = deployment.resources()
    assert resources["mlflow"].resource_fn is not None  # dagster-mlflow's, not the none resource

    instance = dg.DagsterInstance.ephemeral()
    key = dg.MultiPartitionKey({"model": "logistic_regression", "fold": "0"})
    result = dg.materialize([fold_results], partition_key=key, resources=resources, instance=instance)
    assert result.success

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name(SERVER_EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["dagster_run_id"] == result.run_id
    assert (run.data.tags["model"], run.data.tags["fold"]) == ("logistic_regression", "0")
    assert run.info.run_name == "logistic_regression-fold0"
    assert 0.5 < run.data.metrics["roc_auc"] <= 1.0
    assert {a.path for a in client.list_artifacts(run.info.run_id, "model")} >= {"model/pipeline.skops",
                                                                                  "model/model.json"}
    metadata = result.asset_materializations_for_node("fold_results")[0].metadata
    assert metadata["mlflow_run_id"].value == run.info.run_id

    # A fold that fails ends its MLflow run as FAILED instead of leaving it running.
    (data / "catalog" / "folds.parquet").unlink()
    failed = dg.materialize([fold_results], partition_key=dg.MultiPartitionKey({"model": "logistic_regression",
                                                                                "fold": "1"}),
                            resources=resources, instance=instance, raise_on_error=False)
    assert not failed.success
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.dagster_run_id = '{failed.run_id}'")
    assert [r.info.status for r in runs] == ["FAILED"]


def test_bundles_go_to_the_tracking_servers_registry_and_come_back_byte_for_byte(mlflow_server, tmp_path):
    """The registry on a tracking server: a bundle registered through it (artifacts proxied by the server),
    made champion, fetched elsewhere with the same files; rollback moves the alias back."""
    from fvc_resources.model_registry import ModelRegistry
    from tests.serve_fixtures import THRESHOLDS, register_bundle, train_folds

    data = tmp_path / "data"
    folds = train_folds(data)
    registry = ModelRegistry(mlflow_server)
    first = register_bundle(data, registry, folds, THRESHOLDS)
    second = register_bundle(data, registry, folds, {**THRESHOLDS, "fpr_5": 0.2})
    assert first.source.startswith("mlflow-artifacts:") and second.version != first.version
    registry.set_champion(first.version, "test", "first")
    registry.set_champion(second.version, "test", "second")
    fetched = registry.fetch(registry.champion(), tmp_path / "cache")
    bundle = data / "deployed" / second.digest
    sent = {p.relative_to(bundle): p.read_bytes() for p in bundle.rglob("*") if p.is_file()}
    got = {p.relative_to(fetched): p.read_bytes() for p in fetched.rglob("*") if p.is_file()}
    assert got == sent and len(sent) >= 11  # bundle.json and two files per fold
    left, now = registry.rollback()
    assert (left.version, now.version) == (second.version, first.version)
    assert registry.champion().version == first.version
