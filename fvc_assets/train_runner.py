"""``fvc run``'s stage 5: catalog and folds, every model x fold, then the comparison.

Each step is a Dagster run in the instance at ``DAGSTER_HOME`` (jobs
``catalog``, ``train`` per model x fold, ``compare``), so everything shows in
the UI afterwards. Base models train first (``jobs`` partitions at a time);
the ensemble, which reads their held-out scores, trains after them.
"""

import os
from dataclasses import dataclass, field

import dagster as dg
from fvc_assets.jobs import CATALOG_JOB, COMPARE_JOB, TRAIN_JOB
from fvc_assets.partitions import FOLDS, MODELS
from fvc_assets.runner import execute_job, run_in_workers, step_failure_message
from fvc_assets.train.models.registry import spec


@dataclass
class StepOutcome:
    name: str
    run_id: str
    success: bool
    error: str = ""


@dataclass
class TrainingSummary:
    outcomes: list[StepOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[StepOutcome]:
        return [o for o in self.outcomes if not o.success]


def _execute(job_name: str, name: str, log_level: str, partition_key=None, threads: int = 0) -> StepOutcome:
    if threads:
        # Workers share the cores: cap each one's math libraries before torch/xgboost start their pools.
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(threads)
    result = execute_job(job_name, partition_key, log_level)
    return StepOutcome(name, result.run_id, result.success, "" if result.success else step_failure_message(result))


def run_fold(model: str, fold: str, log_level: str, threads: int) -> StepOutcome:
    key = dg.MultiPartitionKey({"model": model, "fold": fold})
    return _execute(TRAIN_JOB, f"{model}/fold {fold}", log_level, key, threads)


def run_training(on_outcome=None, log_level: str = "WARNING", jobs: int = 1) -> TrainingSummary:
    summary = TrainingSummary()

    def record(outcome: StepOutcome) -> None:
        summary.outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)

    record(_execute(CATALOG_JOB, "catalog + folds", log_level))
    if summary.failed:
        return summary
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else 0
    crashed = lambda item, exc: StepOutcome(f"{item[0]}/fold {item[1]}", "", False, f"worker process failed: {exc!r}")
    for stage in ("base", "stacked"):
        models = [m for m in MODELS if (spec(m).inputs == "scores") == (stage == "stacked")]
        items = [(m, f, log_level, threads) for m in models for f in FOLDS]
        run_in_workers(run_fold, items, jobs, record, crashed)
    record(_execute(COMPARE_JOB, "model comparison", log_level))
    return summary
