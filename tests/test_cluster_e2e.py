"""Scale-out end to end: demo videos in the inbox, ``fvc run`` with the SLURM executor on the
two-node cluster, the Dagster instance and MLflow on PostgreSQL, one node taken down mid-step;
then the outputs compared with the session's local run of the same videos (tests/demo_run.py:
in process, sqlite instance), byte for byte.

Everything is real: slurmctld and two slurmd (scripts/slurm-local.sh), PostgreSQL
(scripts/postgres-local.sh), the deployment's DAGSTER_HOME template (deploy/cluster/),
Dagster's run queue, daemon and run retries. This is the recipe of docs/operating.md's
"Running on a cluster", on one machine.
"""

import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tests.demo_run import FEATURE_FILES, VIDEOS, fvc_env
from tests.slurm_fixtures import REPO_ROOT, _restore_env, _set_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

FVC = [sys.executable, "-m", "fvc_assets.cli"]
# Deterministic models: their metrics must match the local run's to 1e-6 (it trains them too).
MODELS = ["logistic_regression", "linear_svm"]
FOLDS = range(5)
DOWN_REASON = "fvc-test: node taken down mid-step"
RUN_TIMEOUT_S = 1500


def scontrol_jobs() -> dict[str, dict[str, str]]:
    """Every job SLURM still knows (finished ones stay an hour here), by id: the fields before Command=."""
    out = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True, check=True).stdout
    jobs = {}
    for line in out.splitlines():
        fields = dict(re.findall(r"(?:^|\s)([A-Za-z/:]+)=(\S*)", line.split(" Command=", 1)[0]))
        comment = re.search(r" Comment=(\S+)", line)  # after Command=; our jobs' comments are run ids
        if "JobId" in fields:
            jobs[fields["JobId"]] = {**fields, "Comment": comment.group(1) if comment else ""}
    return jobs


def step_of(job_name: str) -> str:
    return job_name.split("-", 2)[2]  # fvc-<run id[:8]>-<step key>


class NodeFault:
    """Takes n2 down while one of its step jobs is in the middle of its work, then brings it back
    once Dagster's retry of that step has started on the other node."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.job: dict[str, str] | None = None  # the job that was running on n2
        self.retry_job: dict[str, str] | None = None
        self.error: BaseException | None = None
        self.downed = False
        self.after = max(map(int, scontrol_jobs()), default=0)  # jobs of earlier tests do not count
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self._inject()
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            if self.downed:
                self.cluster.set_node_state("n2", "resume")

    def _inject(self) -> None:
        deadline = time.monotonic() + RUN_TIMEOUT_S  # the run's own limit: on a busy machine the late videos come late
        with dg.DagsterInstance.get() as instance:
            while self.job is None:
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                late, candidate = self._long_step_running_on_n2()
                # Mid-step: the step has started its work and not reported its end (a job winds down
                # for a second after its step's last event).
                if candidate is None or self._step_events(instance, candidate) != [dg.DagsterEventType.STEP_START]:
                    # Each look is an `scontrol` (a process and a request to slurmctld): once a second until
                    # the late videos, then five times a second to catch a step mid-way.
                    time.sleep(0.2 if late else 1.0)
                    continue
                self.cluster.set_node_state("n2", "down", DOWN_REASON)
                self.downed = True
                if self._state_once_ended(candidate["JobId"]) == "NODE_FAIL" and \
                        self._wait_for_step_end(instance, candidate) == dg.DagsterEventType.STEP_FAILURE:
                    self.job = scontrol_jobs()[candidate["JobId"]]
                else:  # it finished in the moment before the node went down: try again with another
                    self.cluster.set_node_state("n2", "resume")
                    self.downed = False
            while self.retry_job is None:
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                retries = instance.get_run_ids(dg.RunsFilter(tags={"dagster/parent_run_id": self.job["Comment"]}))
                for job in scontrol_jobs().values():
                    if (retries and job.get("Comment") == retries[0] and job["JobName"].endswith(step_of(self.job["JobName"]))
                            and job["JobState"] != "PENDING"):
                        self.retry_job = job
                time.sleep(0.5)

    @staticmethod
    def _step_events(instance, job: dict[str, str]) -> list:
        """The start and end events (success, failure) the job's step has reported so far."""
        types = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
        records = instance.get_records_for_run(job["Comment"], of_type=types).records
        return [r.event_log_entry.dagster_event.event_type for r in records
                if r.event_log_entry.step_key == step_of(job["JobName"])]

    def _wait_for_step_end(self, instance, job: dict[str, str]):
        for _ in range(120):
            if (events := self._step_events(instance, job))[1:]:
                return events[-1]
            time.sleep(0.25)
        return None

    def _long_step_running_on_n2(self) -> tuple[bool, dict[str, str] | None]:
        """(late, job). Late: all but a few videos' runs have started (the retry run then waits behind few
        queued runs, and n2 is back soon). The job, once late: a stage 1 or 3 step on n2 past its start-up
        (loading the code takes seconds)."""
        jobs = [job for job_id, job in scontrol_jobs().items() if int(job_id) > self.after]
        if sum(step_of(job["JobName"]) == "raw_videos" for job in jobs) < VIDEOS - 4:
            return False, None
        for job in jobs:
            if job["JobState"] != "RUNNING" or job.get("NodeList") != "n2" or \
                    step_of(job["JobName"]) not in ("augmented_videos", "scaled_videos"):
                continue
            started = time.mktime(time.strptime(job["StartTime"], "%Y-%m-%dT%H:%M:%S"))
            if time.time() - started >= 3:
                return True, job
        return True, None

    @staticmethod
    def _state_once_ended(job_id: str) -> str:
        for _ in range(100):
            state = scontrol_jobs()[job_id]["JobState"]
            if state not in ("RUNNING", "COMPLETING"):
                return state
            time.sleep(0.1)
        return state


def copy_env(home: Path, data: Path, **extra: str) -> dict[str, str]:
    return fvc_env(DAGSTER_HOME=str(home), FVC_DATA_DIR=str(data), FVC_MODELS=" ".join(MODELS),
                   FVC_INBOX_SETTLE_S="0", **extra)


@pytest.fixture(scope="module")
def runs(demo_corpus, slurm_cluster, postgres_env, request):
    """The cluster run (and its fault) of the demo corpus that the session's local run had.

    The local run (the ``demo_run`` fixture) is made while the cluster run works: the cluster's steps spend
    much of their time on SLURM's and Dagster's polls, which the local run's computing fills."""
    # Under /tmp, as a shared filesystem would be: every node (here: every slurmd) sees the same paths.
    root = Path(tempfile.mkdtemp(prefix="fvc-cluster-"))
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "deploy" / "cluster" / "dagster.yaml", home / "dagster.yaml")
    cluster_env = copy_env(home, data, FVC_EXECUTOR="slurm", **postgres_env)
    shutil.copytree(demo_corpus, data / "inbox")

    old = _set_env({k: cluster_env[k] for k in ("DAGSTER_HOME", "FVC_DATA_DIR", *postgres_env)})
    fault = NodeFault(slurm_cluster)
    try:
        started = time.monotonic()
        process = subprocess.Popen([*FVC, "run", "--jobs", "3"], env=cluster_env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        fault.thread.start()
        try:
            local = request.getfixturevalue("demo_run")
            out, _ = process.communicate(timeout=max(60, RUN_TIMEOUT_S - (time.monotonic() - started)))
        finally:
            if process.poll() is None:
                process.kill()
            fault.stop.set()
            fault.thread.join(timeout=60)
        print(f"cluster run {time.monotonic() - started:.0f} s; its summary:")
        print("\n".join(line for line in out.splitlines() if " in " in line and "run(s)" in line))
        with dg.DagsterInstance.get() as instance:
            yield {"out": process.returncode, "stdout": out, "fault": fault, "instance": instance, "data": data,
                   "local": local, "mlflow_uri": postgres_env["MLFLOW_TRACKING_URI"]}
    finally:
        _restore_env(old)
        shutil.rmtree(root, ignore_errors=True)


def events(instance, run_id, event_type):
    return [r.event_log_entry for r in instance.get_records_for_run(run_id, of_type=event_type).records]


def test_fvc_run_on_two_nodes_and_postgres_succeeds_through_a_node_failure(runs):
    assert runs["out"] == 0, runs["stdout"][-5000:]
    assert runs["fault"].error is None, runs["fault"].error
    assert f"{VIDEOS} video partition(s) run, 0 failed" in runs["stdout"]
    instance = runs["instance"]
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"


def test_the_step_on_the_lost_node_fails_with_the_reason_and_dagsters_retry_lands_on_the_other_node(runs):
    fault, instance = runs["fault"], runs["instance"]
    assert fault.job is not None, "no step job ran on n2 long enough to take the node down under it"
    assert fault.retry_job is not None, "the failed step's retry never started"
    failed_run = instance.get_run_by_id(fault.job["Comment"])
    step = step_of(fault.job["JobName"])
    assert failed_run.status == dg.DagsterRunStatus.FAILURE
    assert failed_run.tags.get("dagster/will_retry") == "true"
    said = "\n".join((e.user_message or "") for e in events(instance, failed_run.run_id, dg.DagsterEventType.ENGINE_EVENT)
                     if e.step_key == step)
    said += "\n".join(e.dagster_event.step_failure_data.error.message
                       for e in events(instance, failed_run.run_id, dg.DagsterEventType.STEP_FAILURE) if e.step_key == step)
    assert f"SLURM job {fault.job['JobId']} NODE_FAIL" in said and "the node running the job failed" in said, said
    assert "marked for Dagster's run retry" in said
    assert scontrol_jobs()[fault.job["JobId"]]["JobState"] == "NODE_FAIL"
    # The retry: Dagster's run retry from the failure, its step on n1, and it succeeded.
    retry = instance.get_run_by_id(fault.retry_job["Comment"])
    assert retry.tags["dagster/parent_run_id"] == failed_run.run_id
    assert retry.status == dg.DagsterRunStatus.SUCCESS
    assert fault.retry_job["NodeList"] == "n1"
    assert f"Dagster retries it as run {retry.run_id}" in runs["stdout"]


def test_every_step_ran_as_a_slurm_job_and_jobs_ran_on_both_nodes(runs):
    instance = runs["instance"]
    known = scontrol_jobs()
    nodes, steps = set(), 0
    run_ids = instance.get_run_ids()
    assert len(run_ids) >= VIDEOS + 1 + 5 * len(MODELS)
    for run_id in run_ids:
        submitted = {e.step_key: e.dagster_event.event_specific_data.metadata["slurm_job_id"].value
                     for e in events(instance, run_id, dg.DagsterEventType.STEP_WORKER_STARTING)}
        for started in events(instance, run_id, dg.DagsterEventType.STEP_START):
            assert started.step_key in submitted, f"step {started.step_key} of run {run_id} was not a SLURM job"
            steps += 1
            nodes.add(known[submitted[started.step_key]]["NodeList"])
    assert nodes == {"n1", "n2"}
    assert steps >= VIDEOS * 5 + 5 * len(MODELS)


def test_mlflow_on_postgres_holds_every_fold(runs):
    from mlflow import MlflowClient

    client = MlflowClient(runs["mlflow_uri"])
    for model in MODELS:
        experiment = client.get_experiment_by_name(f"fvc/{model}")
        assert experiment is not None, model
        found = client.search_runs([experiment.experiment_id])
        assert sorted(int(r.data.tags["fold"]) for r in found) == list(FOLDS)
        assert {r.info.status for r in found} == {"FINISHED"}
        assert all("roc_auc" in r.data.metrics for r in found)


def test_features_are_byte_identical_and_metrics_match_the_local_run_of_the_same_videos(runs):
    local = runs["local"]
    assert local.run.returncode == 0, local.run.stdout[-3000:] + local.run.stderr[-3000:]
    data, reference = runs["data"], local.reference
    videos = sorted(p.name for p in (reference / "videos").iterdir())
    assert len(videos) == VIDEOS and sorted(p.name for p in (data / "videos").iterdir()) == videos
    for video in videos:
        for name in FEATURE_FILES:
            assert (data / "videos" / video / name).read_bytes() == (reference / "videos" / video / name).read_bytes(), \
                f"{video}/{name} differs between the cluster and the local run"
    for model in MODELS:
        for fold in FOLDS:
            path = Path("train") / model / f"fold_{fold}" / "metrics.parquet"
            there = dict(pl.read_parquet(data / path).select("metric", "value").iter_rows())
            here = dict(pl.read_parquet(reference / path).select("metric", "value").iter_rows())
            assert there.keys() == here.keys()
            for metric, value in here.items():
                if metric != "train_seconds":
                    assert there[metric] == pytest.approx(value, abs=1e-6, nan_ok=True), (model, fold, metric)


def test_nothing_half_written_is_left_behind(runs):
    leftovers = [p for p in runs["data"].rglob("*") if ".tmp-" in p.name]
    assert leftovers == []
