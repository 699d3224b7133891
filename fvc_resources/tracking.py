"""MLflow tracking for stage 5: one MLflow run per ``fold_results`` partition, one experiment per model.

A thin resource over ``MlflowClient`` rather than dagster-mlflow's
``mlflow_tracking``: that resource binds one experiment per resource config,
keeps MLflow's process-global active run and writes the process environment, and joins
all steps of a Dagster run into one MLflow run. Here every model x fold is its
own MLflow run in its model's experiment, no global state is touched, and with
the embedded sqlite store every write holds an exclusive file lock beside the
database, so parallel steps never meet sqlite's "database is locked".
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager, nullcontext
from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

EXPERIMENT_PREFIX = "fvc/"


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

    def _lock(self):
        if not self.uri.startswith("sqlite:///"):
            return nullcontext()
        return _file_lock(Path(self.uri.removeprefix("sqlite:///")).with_suffix(".lock"))

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
    ) -> str | None:
        """One finished MLflow run for one model x fold; returns its run id (None when disabled)."""
        if not self.enabled:
            return None
        import math

        from mlflow.entities import Metric, Param, RunTag

        with self._lock():
            client = self.client()
            experiment_id = self.experiment_id(client, model)
            run = client.create_run(experiment_id, run_name=f"{model}-fold{fold}",
                                    tags={"model": model, "fold": str(fold), **tags})
            run_id = run.info.run_id
            try:
                client.log_batch(
                    run_id,
                    metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items() if math.isfinite(v)],
                    params=[Param(k, str(v)[:6000]) for k, v in params.items()],
                    tags=[RunTag("mlflow.source.name", "fvc fold_results")],
                )
                for path in artifacts:
                    client.log_artifact(run_id, str(path), artifact_path="model")
                client.set_terminated(run_id, "FINISHED")
            except Exception:
                client.set_terminated(run_id, "FAILED")
                raise
        return run_id


@contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
