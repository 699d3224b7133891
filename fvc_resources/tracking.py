"""MLflow tracking for stage 5: one MLflow run per ``fold_results`` partition, one experiment per model.

A thin resource over ``MlflowClient`` rather than dagster-mlflow's
``mlflow_tracking``: that resource binds one experiment per resource config,
keeps MLflow's process-global active run and writes ``os.environ``, and joins
all steps of a Dagster run into one MLflow run. Here every model x fold is its
own MLflow run in its model's experiment, no global state is touched, and with
the embedded sqlite store every write holds an exclusive file lock beside the
database, so parallel steps never meet sqlite's "database is locked".
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager, nullcontext
from pathlib import Path

import dagster as dg
from pydantic import Field

EXPERIMENT_PREFIX = "fvc/"


def default_tracking_uri() -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    home = Path(os.environ.get("DAGSTER_HOME") or "dagster_home").absolute()
    return f"sqlite:///{home / 'mlflow.db'}"


def default_artifact_root() -> str:
    home = Path(os.environ.get("DAGSTER_HOME") or "dagster_home").absolute()
    return (home / "mlflow-artifacts").as_uri()


class MlflowTracking(dg.ConfigurableResource):
    """Where MLflow runs go. Default: a sqlite store in DAGSTER_HOME (``fvc mlflow-ui`` opens it)."""

    # None: resolved from the environment when used (not at import), like the storage root.
    tracking_uri: str | None = Field(default=None, description="MLflow tracking URI (default: sqlite in DAGSTER_HOME).")
    artifact_root: str | None = Field(default=None,
                                      description="Artifact location for experiments this platform creates.")

    @property
    def uri(self) -> str:
        return self.tracking_uri or default_tracking_uri()
    enabled: bool = Field(default=True, description="False: record nothing in MLflow.")

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
        root = self.artifact_root or default_artifact_root()
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
