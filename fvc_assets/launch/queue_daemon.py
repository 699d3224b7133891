"""The daemon ``fvc run`` starts when none is running: Dagster's run queue, run monitoring and run retries.

It is Dagster's own daemon controller with two or three of its daemons: the queued run
coordinator, which starts queued runs up to ``max_concurrent_runs``; run monitoring,
which fails runs whose worker died and frees their pool slots; and, when the instance
enables ``run_retries`` (the cluster's does), the event-log consumer that re-executes
failed runs it may retry.
Sensors and automation are left to the full ``dagster-daemon`` (``fvc ui``):
``fvc run`` materialises what it was asked for, in the asset graph's order,
and a sensor acting on the same videos at the same time would only race it.

It stops at the end of its standard input, so it never outlives the ``fvc run``
that started it (even one killed with SIGKILL).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def _exit_at_end_of_input() -> None:
    def watch() -> None:
        # os.read, not sys.stdin: a daemon thread blocked in a buffered read aborts interpreter shutdown.
        while os.read(0, 1024):
            pass
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def needs_code_location(instance) -> bool:
    """Does this daemon need the code location loaded (a code server of its own)?

    Dagster's launchers start a run through the code location's server; fvc's launcher forks it
    from the run's own code origin and never asks the workspace. Run monitoring needs the workspace
    only to resume runs (``max_resume_run_attempts``, 0 here), run retries to re-execute. Without
    either, the daemon loads no code: no code server to start (seconds before the first run is
    dequeued) and none to replace every minute while `fvc run` works.
    """
    launcher_needs_it = not getattr(instance.run_launcher, "launches_from_code_origin", False)
    return launcher_needs_it or instance.run_retries_enabled or instance.run_monitoring_max_resume_run_attempts > 0


def start_run_host_early(instance) -> None:
    """`fvc run` starts this daemon because it is about to queue runs: a launcher with a host process
    (fvc_resources.run_launcher) starts that host now, beside the daemon's own start-up, instead of at
    the first launch (seconds of imports off the first run's start). A failure here is not fatal: the
    first launch tries again and reports it on its run."""
    start = getattr(instance.run_launcher, "start_host", None)
    if start is None:
        return

    def quietly() -> None:
        try:
            start()
        except Exception as error:  # noqa: BLE001 — the first launch retries and fails its run with the reason
            print(f"run queue daemon: the run host did not start early: {error}", file=sys.stderr)

    threading.Thread(target=quietly, name="run-host-start", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Dagster's run queue and run monitoring daemons.")
    parser.add_argument("--workspace", required=True, help="workspace.yaml of the code location")
    parser.add_argument("--max-concurrent-runs", type=int, help="overrides concurrency.runs.max_concurrent_runs")
    parser.add_argument("--dequeue-interval", type=float, default=0.5,
                        help="seconds between looks at the queue (the instance setting takes whole seconds only)")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef
    from dagster._core.workspace.load_target import EmptyWorkspaceTarget, WorkspaceFileTarget
    from dagster._daemon.controller import create_daemon_of_type, daemon_controller_from_instance
    from dagster._daemon.auto_run_reexecution.event_log_consumer import EventLogConsumerDaemon
    from dagster._daemon.daemon import MonitoringDaemon
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
    from dagster._utils.interrupts import capture_interrupts, setup_interrupt_handlers

    overrides = {}
    if args.max_concurrent_runs:
        overrides = {"concurrency": {"runs": {"max_concurrent_runs": args.max_concurrent_runs}}}
    ref = InstanceRef.from_dir(os.environ["DAGSTER_HOME"], overrides=overrides)

    def daemons(instance):
        # A run that ends frees its slot for the next queued run within this interval: the one fixed
        # cost per run that the queue adds, so it is kept short (a look at the queue is one query).
        chosen = [QueuedRunCoordinatorDaemon(interval_seconds=args.dequeue_interval),
                  create_daemon_of_type(MonitoringDaemon.daemon_type(), instance)]
        if instance.run_retries_enabled:  # the instance's run_retries: re-executes failed runs it may retry
            chosen.append(create_daemon_of_type(EventLogConsumerDaemon.daemon_type(), instance))
        return chosen

    from fvc_assets.launch.daemon import ANOTHER_DAEMON_EXIT, lock_path
    from fvc_resources.locks import OutputBusy, exclusive_writer

    try:
        lock = exclusive_writer(lock_path(), f"pid {os.getpid()}", "the run queue daemon of this instance")
        lock.__enter__()  # held until this process ends
    except OutputBusy:
        sys.exit(ANOTHER_DAEMON_EXIT)  # another `fvc run` started one a moment ago: it serves us too
    setup_interrupt_handlers()
    _exit_at_end_of_input()
    try:
        with capture_interrupts(), DagsterInstance.from_ref(ref) as instance:
            start_run_host_early(instance)
            target = WorkspaceFileTarget(paths=[args.workspace]) if needs_code_location(instance) \
                else EmptyWorkspaceTarget()
            with daemon_controller_from_instance(
                instance,
                workspace_load_target=target,
                gen_daemons=daemons,
                log_level=args.log_level,
                code_server_log_level=args.log_level,
            ) as controller:
                controller.check_daemon_loop()
    except KeyboardInterrupt:
        return


if __name__ == "__main__":
    main()
