"""``fvc run``: a blocking client of the run queue.

It registers the inbox, then, job by job in the asset graph's order, submits a
run for every partition that is missing, failed or stale (or every partition
with ``force``), waits for them, and reports each run that ended. The runs are
ordinary queued runs: the daemon starts them through the run launcher and the
job's executor, they show in the UI and can be terminated there.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
from fvc_assets.launch.daemon import QueueDaemon
from fvc_assets.jobs import BATCH_STAGES
from fvc_core.batches import Batching, contiguous_batches
from fvc_assets.launch.outcomes import batch_outcome, failure_message
from fvc_assets.launch.incremental_plan import plan_partitions
from fvc_assets.launch.plan import jobs_in_graph_order, job_assets
from fvc_assets.launch.submit import RunSubmitter
from fvc_resources.run_launcher import THREADS_TAG

LAUNCHED_BY_TAG = "fvc/launched_by"
BATCH_TAG = "fvc/batch"
POLL_SECONDS = 0.5


@dataclass
class RunOutcome:
    job: str
    partition: str | None
    run_id: str
    success: bool
    error: str = ""


@dataclass
class JobReport:
    job: str
    to_run: dict[str | None, str] = field(default_factory=dict)  # partition -> why
    outcomes: list[RunOutcome] = field(default_factory=list)
    skipped: str = ""  # why the job did not run at all
    batches: int = 0  # per stage, when its partitions ran in batches
    seconds: float = 0.0

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if not o.success]


def all_partitions(instance: dg.DagsterInstance, defs: dg.Definitions, job_name: str) -> list[str | None]:
    partitions_def = defs.resolve_job_def(job_name).partitions_def
    if partitions_def is None:
        return [None]
    return list(partitions_def.get_partition_keys(dynamic_partitions_store=instance))


PLURAL = {"run": "runs", "batch": "batches"}


def describe(what) -> str:
    """A run's partition, or a batch's range."""
    if isinstance(what, list):
        return what[0] if len(what) == 1 else f"{what[0]} .. {what[-1]}"
    return what or ""


class Progress:
    """A live line per job (done / failed / total, ETA), and one line per run that ended; quiet off a terminal."""

    def __init__(self, job: str, total: int, unit: str = "run", stream=sys.stderr):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=job, unit=unit, file=stream, disable=None, dynamic_ncols=True,
                        bar_format="{desc}: {n}/{total} " + PLURAL[unit] + " [{elapsed}<{remaining}] {postfix}")
        self.failed = 0

    def ended(self, success: bool, line: str) -> None:
        self.failed += not success
        self.bar.set_postfix_str(f"{self.failed} failed" if self.failed else "", refresh=False)
        self.bar.update(1)
        self.bar.write(line, file=sys.stdout)

    def close(self) -> None:
        self.bar.close()


WAITING = object()  # a failed run whose retry is decided or launched but not yet visible
RETRY_WAIT_S = 60.0


def retry_of(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None | object:
    """The run that Dagster's run retries (``run_retries`` in dagster.yaml) started for a failed
    ``run``; None when there will be none; ``WAITING`` while the daemon has yet to start it."""
    from dagster._core.storage.tags import PARENT_RUN_ID_TAG, WILL_RETRY_TAG

    if run.status != dg.DagsterRunStatus.FAILURE or not instance.run_retries_enabled:
        return None
    run = instance.get_run_by_id(run.run_id)  # the tag is set as the failure is stored
    will_retry = run.tags.get(WILL_RETRY_TAG)
    children = instance.get_run_ids(dg.RunsFilter(tags={PARENT_RUN_ID_TAG: run.run_id}), limit=1)
    if children:
        return children[0]
    ended = instance.get_run_record_by_id(run.run_id).end_time or 0.0
    if will_retry == "false" or time.time() - ended > RETRY_WAIT_S:
        return None
    return WAITING


class QueueClient:
    """Submits runs and waits for them; ``--jobs`` and the daemon belong to one ``fvc run``."""

    def __init__(self, instance: dg.DagsterInstance, submitter: RunSubmitter, daemon: QueueDaemon,
                 tags: dict[str, str], run_config: dict | None = None):
        self.instance = instance
        self.submitter = submitter
        self.daemon = daemon
        self.tags = tags
        self.run_config = run_config or {}
        self.in_flight: list[str] = []

    def run_job(self, job: str, partitions: list[str | None], show: Callable[[RunOutcome], str]) -> list[RunOutcome]:
        if not partitions:
            return []
        self.daemon.ensure()
        tags = self.tags
        if len(partitions) == 1:
            # This command waits for each job before the next: a job's only run runs alone, so its math
            # libraries get every core (the comparison's leave-one-family-out fits, say), not a share.
            tags = {**tags, THREADS_TAG: str(os.cpu_count() or 1)}
        submitted = {}
        for partition in partitions:
            run_id = self.submitter.submit(job, partition, tags=tags, run_config=self.run_config)
            submitted[run_id] = partition
            self.in_flight.append(run_id)

        def ended(partition: str | None, run: dg.DagsterRun) -> tuple[RunOutcome, str]:
            success = run.status == dg.DagsterRunStatus.SUCCESS
            outcome = RunOutcome(job, partition, run.run_id, success,
                                 "" if success else failure_message(self.instance, run.run_id))
            return outcome, show(outcome)

        return self.wait(job, submitted, ended, unit="run")

    def run_batches(self, job: str, stages: list[str], partitions: list[str], order: list[str], size: int,
                    show: Callable[[RunOutcome], str]) -> list[RunOutcome]:
        """``job``'s partitions through its stage jobs, each as runs over ranges of up to ``size``
        consecutive partitions (``fvc_core.batches``); a stage waits for the one before.
        A video that fails in a stage is left out of the stages after it; one outcome per video: its
        first failure, else success (with the last stage's run)."""
        outcomes: dict[str, RunOutcome] = {}
        for stage in stages:
            todo = [p for p in partitions if p not in outcomes or outcomes[p].success]
            if not todo:
                break
            self.daemon.ensure()
            submitted = {}
            for batch in contiguous_batches(order, todo, size, self.runs_at_once()):
                run_id = self.submitter.submit(stage, batch[0] if len(batch) == 1 else None,
                                               partition_range=None if len(batch) == 1 else (batch[0], batch[-1]),
                                               tags=self.tags, run_config=self.run_config)
                submitted[run_id] = batch
                self.in_flight.append(run_id)

            def ended(batch: list[str], run: dg.DagsterRun, stage=stage) -> tuple[list[RunOutcome], str]:
                failed = batch_outcome(self.instance, run, batch)
                for key in batch:
                    error = f"{stage}: {failed[key]}" if key in failed else ""
                    outcomes[key] = RunOutcome(job, key, run.run_id, key not in failed, error)
                span = describe(batch) + ("" if len(batch) == 1 else f" ({len(batch)} videos)")
                lines = [f"  {stage} {span}: {len(batch) - len(failed)} ok" + (f", {len(failed)} failed" if failed else "")]
                lines += [show(outcomes[key]) for key in batch if key in failed]
                return [outcomes[key] for key in batch], "\n".join(lines)

            self.wait(stage, submitted, ended, unit="batch")
        return [outcomes[p] for p in partitions if p in outcomes]

    def runs_at_once(self) -> int:
        """How many runs the queue starts side by side (``--jobs``, else the instance's limit)."""
        configured = self.instance.get_concurrency_config().run_queue_config.max_concurrent_runs
        return self.daemon.max_concurrent_runs or max(configured, 1)

    def wait(self, job: str, submitted: dict, ended: Callable, unit: str) -> list:
        """Waits for the ``submitted`` runs (run id -> what it runs) and their Dagster retries; ``ended(what,
        run)`` gives what the run yields and the line to print. Returns those in the submitted order."""
        progress = Progress(job, len(submitted), unit)
        results = {}
        origin: dict[str, str] = {}  # a retry run -> the run this client submitted
        try:
            pending = set(submitted)
            while pending:
                for run in self.instance.get_runs(dg.RunsFilter(run_ids=list(pending))):
                    if not run.is_finished:
                        continue
                    retry = retry_of(self.instance, run)
                    if retry is WAITING:
                        continue
                    pending.discard(run.run_id)
                    self.in_flight.remove(run.run_id)
                    if retry is not None:  # Dagster's run retry took it over: wait for that run instead
                        submitted[retry] = submitted[run.run_id]
                        origin[retry] = origin.get(run.run_id, run.run_id)
                        pending.add(retry)
                        self.in_flight.append(retry)
                        progress.bar.write(f"  {job} {describe(submitted[retry])}: run {run.run_id} failed "
                                           f"({failure_message(self.instance, run.run_id)}); Dagster retries it "
                                           f"as run {retry}", file=sys.stdout)
                        continue
                    result, line = ended(submitted[run.run_id], run)
                    results[origin.get(run.run_id, run.run_id)] = result
                    progress.ended(run.status == dg.DagsterRunStatus.SUCCESS, line)
                if pending:
                    self._keep_daemon(pending)
                    time.sleep(POLL_SECONDS)
        finally:
            progress.close()
        return [results[run_id] for run_id in submitted if run_id in results]

    def _keep_daemon(self, pending: set[str]) -> None:
        """A daemon that was running when we started may stop: then start ours for the runs still queued."""
        self.daemon.ensure()  # raises if ours died

    def cancel_in_flight(self) -> list[str]:
        """Cancel (queued) or terminate (started) every run this client submitted that has not ended."""
        canceled = []
        for run_id in list(self.in_flight):
            run = self.instance.get_run_by_id(run_id)
            if run is not None and not run.is_finished:
                self.instance.run_coordinator.cancel_run(run_id)
                canceled.append(run_id)
        return canceled


def plan_job(instance: dg.DagsterInstance, submitter: RunSubmitter, defs: dg.Definitions, job: str,
             partitions: list[str | None], force: bool) -> dict[str | None, str]:
    if force:
        return {p: "asked for" for p in partitions}
    return plan_partitions(instance, submitter.workspace, defs, job, partitions)


def upstream_failure(defs: dg.Definitions, job: str, reports: list[JobReport]) -> str:
    """Why ``job`` must not run: an unpartitioned upstream asset whose run failed (or did not run) just now.

    Partitioned parents are read whole (every video, every model x fold), and the
    reading asset names what is missing itself, so a failed partition never
    holds back the rest; an unpartitioned parent that failed leaves nothing to read.
    """
    graph = defs.resolve_asset_graph()
    upstream = set().union(*(graph.get_ancestor_asset_keys(k) for k in job_assets(defs, job)))
    for report in reports:
        blocked = report.skipped or (report.failed and all(o.partition is None for o in report.failed))
        if blocked and set(job_assets(defs, report.job)) & upstream:
            return f"{report.job} did not succeed"
    return ""


def run_jobs(client: QueueClient, defs: dg.Definitions, jobs: list[str],
             partitions_of: Callable[[str], list[str | None]], force_jobs: set[str],
             show: Callable[[RunOutcome], str], announce: Callable[[JobReport], None],
             batching: Batching | None = None) -> list[JobReport]:
    """Each job in graph order: plan its out-of-date partitions, run them, wait; skip what a failure blocks.
    With ``batching``, a per-video job with more videos to run than its threshold runs them in batches
    through its stage jobs (``BATCH_STAGES``)."""
    reports: list[JobReport] = []
    for job in jobs_in_graph_order(defs, jobs):
        report = JobReport(job)
        reports.append(report)
        report.skipped = upstream_failure(defs, job, reports[:-1])
        if report.skipped:
            announce(report)
            continue
        started = time.perf_counter()
        report.to_run = plan_job(client.instance, client.submitter, defs, job, partitions_of(job), job in force_jobs)
        if batching and job in BATCH_STAGES and batching.applies(len(report.to_run)):
            order = all_partitions(client.instance, defs, job)
            stages = jobs_in_graph_order(defs, BATCH_STAGES[job])
            report.batches = len(contiguous_batches(order, report.to_run, batching.size, client.runs_at_once()))
            announce(report)
            report.outcomes = client.run_batches(job, stages, list(report.to_run), order, batching.size, show)
        else:
            announce(report)
            report.outcomes = client.run_job(job, list(report.to_run), show)
        report.seconds = time.perf_counter() - started
    return reports
