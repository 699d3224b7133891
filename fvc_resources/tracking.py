"""MLflow tracking for stage 5: one MLflow run per ``fold_results`` / ``ensemble_results`` partition.

Two paths, by where the store is:

- **One machine, the embedded sqlite store** (default): a thin resource over
  ``MlflowClient``, one experiment per model (``fvc/<model>``). No process-global state
  is touched, and every write holds an exclusive file lock beside the database, so
  parallel steps never meet sqlite's "database is locked". dagster-mlflow's resource
  is not used here: it keeps MLflow's process-global active run and would bypass the lock.
- **A tracking server** (``http(s)://``, as on a cluster): dagster-mlflow's
  ``mlflow_tracking`` resource (resource key ``mlflow``, configured by the definitions)
  opens the MLflow run of the Dagster run when the step starts, in the experiment
  ``fvc``, and finds it again by the ``dagster_run_id`` tag when a retried step or a
  SLURM job of the same run starts elsewhere; a ``train`` run is one model x fold, so
  its MLflow run gets that fold's tags, parameters, metrics and model files, and is
  ended here (FAILED when training fails).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from fvc_resources.store_lock import file_lock, store_lock

EXPERIMENT_PREFIX = "fvc/"
SERVER_EXPERIMENT = "fvc"  # the experiment of dagster-mlflow's runs on a tracking server
SERVER_SCHEMES = ("http://", "https://")


def is_tracking_server(uri: str | None) -> bool:
    return bool(uri) and uri.startswith(SERVER_SCHEMES)


def embedded_store(instance_root: Path) -> tuple[str, str]:
    """The default MLflow store beside a Dagster instance: (tracking URI, artifact root)."""
    root = Path(instance_root).absolute()
    return f"sqlite:///{root / 'mlflow.db'}", (root / "mlflow-artifacts").as_uri()


class MlflowTracking(dg.ConfigurableResource):
    """Where MLflow runs go. Default: a sqlite store in the Dagster instance's folder
    (``fvc mlflow-ui`` opens it), found from the run's instance, not from the environment."""

    tracking_uri: str | None = Field(default=None, description="MLflow tracking URI (default: sqlite in the "
                                                               "instance's folder, DAGSTER_HOME).")
    artifact_root: str | None = Field(default=None,
                                      description="Artifact location for experiments this platform creates.")
    enabled: bool = Field(default=True, description="False: record nothing in MLflow.")

    _instance_root: Path | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        instance = context.instance
        if instance is not None and instance.is_persistent:
            self._instance_root = Path(instance.root_directory)

    def _embedded(self) -> tuple[str, str]:
        if self._instance_root is None:
            raise RuntimeError("MlflowTracking has no tracking_uri and no persistent Dagster instance to keep "
                               "its store in: set tracking_uri, or run on an instance with a DAGSTER_HOME")
        return embedded_store(self._instance_root)

    @property
    def uri(self) -> str:
        return self.tracking_uri or self._embedded()[0]

    def experiment_artifact_root(self) -> str | None:
        """Where experiments this platform creates keep their artifacts (None: a tracking server's own)."""
        if self.artifact_root or is_tracking_server(self.uri):
            return self.artifact_root
        return self._embedded()[1]

    def _lock(self):
        """sqlite: one writer at a time for the whole record (parallel steps would meet "database is locked")."""
        return store_lock(self.uri)

    def _setup_lock(self):
        """Another database (Postgres on a cluster): only the first steps race, creating MLflow's
        tables and an experiment at once; a lock beside the instance, which every node shares
        (flock on the shared filesystem), lets one do it."""
        if self.uri.startswith("sqlite:///") or self._instance_root is None:
            return nullcontext()
        return file_lock(self._instance_root / "mlflow-setup.lock")

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def experiment_id(self, client, model: str) -> str:
        name = EXPERIMENT_PREFIX + model
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        root = self.artifact_root or self._embedded()[1]
        return client.create_experiment(name, artifact_location=f"{root}/{model}")

    def record_fold(
        self,
        *,
        model: str,
        fold: int,
        tags: dict[str, str],
        params: dict[str, str],
        metrics: dict[str, float],
        artifacts: list[Path],
        history: list[tuple[str, float, int, int]] = (),
        server_run=None,
    ) -> str | None:
        """One finished MLflow run for one model x fold; returns its run id (None when disabled).

        ``history``: training curves as (metric, value, timestamp in ms, step), kept as MLflow metric
        history. ``server_run``: dagster-mlflow's resource (tracking server), whose active run this fills.
        """
        if not self.enabled:
            return None
        if server_run is not None:
            return record_in_active_run(server_run, model=model, fold=fold, tags=tags, params=params,
                                        metrics=metrics, artifacts=artifacts, history=history)
        from mlflow.entities import Metric, Param, RunTag

        with self._lock():
            with self._setup_lock():
                client = self.client()
                experiment_id = self.experiment_id(client, model)
            run = client.create_run(experiment_id, run_name=f"{model}-fold{fold}",
                                    tags={"model": model, "fold": str(fold), **tags})
            run_id = run.info.run_id
            try:
                now = int(time.time() * 1000)
                client.log_batch(
                    run_id,
                    metrics=[Metric(k, v, now, 0) for k, v in recordable_metrics(metrics).items()],
                    params=[Param(k, v) for k, v in recordable_params(params).items()],
                    tags=[RunTag("mlflow.source.name", "fvc fold_results")],
                )
                log_history(client, run_id, history)
                for path in artifacts:
                    client.log_artifact(run_id, str(path), artifact_path="model")
                client.set_terminated(run_id, "FINISHED")
            except Exception:
                client.set_terminated(run_id, "FAILED")
                raise
        return run_id


def recordable_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """MLflow refuses NaN/inf: only finite values (the UI's check names the others)."""
    import math

    return {k: float(v) for k, v in metrics.items() if math.isfinite(v)}


def recordable_params(params: dict[str, str]) -> dict[str, str]:
    """Parameter values as MLflow stores them: strings of at most 6000 characters."""
    return {k: str(v)[:6000] for k, v in params.items()}


HISTORY_BATCH = 1000  # MLflow takes at most 1000 metrics per log_batch


def log_history(client, run_id: str, history) -> None:
    """Training curves as metric history: each value at its own step and time."""
    import math

    from mlflow.entities import Metric

    points = [Metric(k, float(v), int(t), int(step)) for k, v, t, step in history if math.isfinite(v)]
    for start in range(0, len(points), HISTORY_BATCH):
        client.log_batch(run_id, metrics=points[start:start + HISTORY_BATCH])


def record_in_active_run(mlflow, *, model: str, fold: int, tags: dict[str, str], params: dict[str, str],
                         metrics: dict[str, float], artifacts: list[Path], history=()) -> str:
    """Fill and end the active run of dagster-mlflow's ``mlflow`` resource with one fold's results."""
    from mlflow import MlflowClient

    run_id = mlflow.active_run().info.run_id
    mlflow.set_tags({"model": model, "fold": str(fold), "mlflow.runName": f"{model}-fold{fold}",
                     "mlflow.source.name": "fvc fold_results", **tags})
    mlflow.log_params(recordable_params(params))
    mlflow.log_metrics(recordable_metrics(metrics))
    client = getattr(mlflow, "tracking_client", None) or MlflowClient(tracking_uri=mlflow.get_tracking_uri())
    log_history(client, run_id, history)
    for path in artifacts:
        mlflow.log_artifact(str(path), artifact_path="model")
    mlflow.end_run(status="FINISHED")
    return run_id


def end_failed(mlflow) -> None:
    """The step failed: end dagster-mlflow's active run as FAILED rather than leave it running."""
    if mlflow is not None and mlflow.active_run() is not None:
        mlflow.end_run(status="FAILED")
