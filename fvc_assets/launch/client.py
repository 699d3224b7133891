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
from fvc_assets.launch.outcomes import failure_message
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
    seconds: float = 0.0

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if not o.success]


def all_partitions(instance: dg.DagsterInstance, defs: dg.Definitions, job_name: str) -> list[str | None]:
    partitions_def = defs.resolve_job_def(job_name).partitions_def
    if partitions_def is None:
        return [None]
    return list(partitions_def.get_partition_keys(dynamic_partitions_store=instance))


class Progress:
    """A live line per job (done / failed / total, ETA), and one line per run that ended; quiet off a terminal."""

    def __init__(self, job: str, total: int, stream=sys.stderr):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=job, unit="run", file=stream, disable=None, dynamic_ncols=True,
                        bar_format="{desc}: {n}/{total} runs [{elapsed}<{remaining}] {postfix}")
        self.failed = 0

    def ended(self, outcome: RunOutcome, line: str) -> None:
        self.failed += not outcome.success
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
        submitted = {}
        tags = self.tags
        if len(partitions) == 1:
            # This command waits for each job before the next: a job's only run runs alone, so its math
            # libraries get every core (the comparison's leave-one-family-out fits, say), not a share.
            tags = {**tags, THREADS_TAG: str(os.cpu_count() or 1)}
        for partition in partitions:
            run_id = self.submitter.submit(job, partition, tags=tags, run_config=self.run_config)
            submitted[run_id] = partition
            self.in_flight.append(run_id)
        progress = Progress(job, len(submitted))
        outcomes = []
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
                        progress.bar.write(f"  {job} {submitted[retry] or ''}: run {run.run_id} failed "
                                           f"({failure_message(self.instance, run.run_id)}); Dagster retries it "
                                           f"as run {retry}", file=sys.stdout)
                        continue
                    success = run.status == dg.DagsterRunStatus.SUCCESS
                    outcome = RunOutcome(job, submitted[run.run_id], run.run_id, success,
                                         "" if success else failure_message(self.instance, run.run_id))
                    outcomes.append(outcome)
                    progress.ended(outcome, show(outcome))
                if pending:
                    self._keep_daemon(pending)
                    time.sleep(POLL_SECONDS)
        finally:
            progress.close()
        order = {run_id: i for i, run_id in enumerate(submitted)}
        return sorted(outcomes, key=lambda o: order[origin.get(o.run_id, o.run_id)])

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
             show: Callable[[RunOutcome], str], announce: Callable[[JobReport], None]) -> list[JobReport]:
    """Each job in graph order: plan its out-of-date partitions, run them, wait; skip what a failure blocks."""
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
        announce(report)
        report.outcomes = client.run_job(job, list(report.to_run), show)
        report.seconds = time.perf_counter() - started
    return reports
