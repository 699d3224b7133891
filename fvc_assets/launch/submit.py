"""Submitting runs to the instance's run queue, as the UI and ``dagster job launch`` do.

A run is created from the code location's remote job (its snapshot and
execution plan, so that the UI shows it like any other run) and submitted to
the run coordinator: with the ``QueuedRunCoordinator`` it waits as QUEUED
until the daemon starts it through the run launcher and the job's executor.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.remote_representation.code_location import CodeLocation
from dagster._core.remote_representation.external import RemoteRepository
from dagster._core.workspace.context import WorkspaceProcessContext, WorkspaceRequestContext
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget, WorkspaceFileTarget

LOCATION_NAME = "fvc"


@dataclass
class RunSubmitter:
    """Creates and queues runs of the code location's jobs; one execution plan per job and run config."""

    instance: dg.DagsterInstance
    workspace: WorkspaceRequestContext
    location: CodeLocation
    repository: RemoteRepository
    defs: dg.Definitions
    _plans: dict = field(default_factory=dict)

    def submit(self, job_name: str, partition_key: str | None = None, tags: Mapping[str, str] | None = None,
               run_config: Mapping | None = None, partition_range: tuple[str, str] | None = None) -> str:
        """Queues a run of one partition, of a range of consecutive partitions (first, last), or unpartitioned."""
        remote_job = self.repository.get_full_job(job_name)
        run_config = dict(run_config or {})
        plan_key = (job_name, repr(sorted(run_config.items())))
        if plan_key not in self._plans:
            self._plans[plan_key] = self.location.get_execution_plan(
                remote_job, run_config, step_keys_to_execute=None, known_state=None, instance=self.instance,
            ).execution_plan_snapshot
        plan = self._plans[plan_key]
        run_tags = {**remote_job.tags, **(tags or {})}
        if partition_key is not None:
            run_tags.update(self.defs.resolve_job_def(job_name).get_tags_for_partition_key(partition_key, None))
        if partition_range is not None:
            run_tags.update({ASSET_PARTITION_RANGE_START_TAG: partition_range[0],
                             ASSET_PARTITION_RANGE_END_TAG: partition_range[1]})
        run = self.instance.create_run(
            job_name=job_name,
            run_id=None,
            run_config=run_config,
            resolved_op_selection=None,
            step_keys_to_execute=plan.step_keys_to_execute,
            op_selection=None,
            status=None,
            root_run_id=None,
            parent_run_id=None,
            tags=run_tags,
            job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            asset_selection=None,
            asset_check_selection=None,
            asset_graph=self.repository.asset_graph,
        )
        return self.instance.submit_run(run.run_id, self.workspace).run_id


def in_process_target(workspace_yaml: Path) -> InProcessWorkspaceLoadTarget:
    """workspace.yaml's code locations, loaded in this process.

    The same module and location name the daemon and the UI load through a code server; here, where
    the definitions are imported already, without one (a second interpreter importing them, seconds
    before the first run can be queued). The runs' code origin is the same either way.
    """
    origins = WorkspaceFileTarget(paths=[str(workspace_yaml)]).create_origins()
    # A code server started here would import from this working directory; so do the runs' code pointers.
    return InProcessWorkspaceLoadTarget([
        InProcessCodeLocationOrigin(
            origin.loadable_target_origin._replace(
                working_directory=origin.loadable_target_origin.working_directory or os.getcwd()),
            location_name=origin.location_name)
        for origin in origins
    ])


@contextmanager
def run_submitter(instance: dg.DagsterInstance, workspace_yaml: Path, defs: dg.Definitions,
                  log_level: str = "WARNING") -> Iterator[RunSubmitter]:
    """The code location of workspace.yaml, as the daemon and the UI know it (in this process)."""
    target = in_process_target(workspace_yaml)
    with WorkspaceProcessContext(instance, target, code_server_log_level=log_level) as process:
        workspace = process.create_request_context()
        error = workspace.get_code_location_error(LOCATION_NAME)
        if error:
            raise SystemExit(f"the code location {LOCATION_NAME!r} failed to load:\n{error.to_string()}")
        location = workspace.get_code_location(LOCATION_NAME)
        (repository,) = location.get_repositories().values()
        yield RunSubmitter(instance, workspace, location, repository, defs)
