"""One real `dagster dev` (webserver + daemon) for the UI tests, with two demo videos dropped into its inbox.

The server runs in its own session (setsid) on a free 127.0.0.1 port with a
temporary DAGSTER_HOME and FVC_DATA_DIR, and is stopped by process group:
SIGINT (dagster dev shuts its webserver, daemon and code server down), then
SIGKILL for whatever is left. Every wait is bounded.

`FVC_UI_WORKSPACE` may point at another workspace.yaml (default: the repo's).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
PER_VIDEO_ASSETS = ("raw_videos", "augmented_videos", "handcrafted_features", "scaled_videos", "scaled_features")
PIPELINE_TIMEOUT_S = 420  # two videos through stages 1-4 and the catalog run, on a busy 2-core machine
# Where screenshots and server logs go (kept after the run, for a person to look at).
TEST_OUTPUT = Path(os.environ.get("FVC_TEST_OUTPUT", REPO_ROOT / "test-output"))


def wait_for(predicate, timeout: float, what: str, interval: float = 2.0):
    """Poll until predicate() is truthy; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class UiServer:
    url: str
    home: Path
    data: Path
    log: Path
    process: subprocess.Popen
    video_keys: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.load(response)
        if payload.get("errors"):
            raise AssertionError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def log_tail(self, n: int = 60) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-n:])


MATERIALIZED_PARTITIONS = """
query($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode { partitionStats { numMaterialized } }
  }
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(limit: 50) { partition runId } }
  }
}"""

CHECK_EXECUTIONS = """
query($path: [String!]!, $check: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 20) {
    runId status partition
    evaluation { success severity partition metadataEntries { label __typename
      ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text }
      ... on JsonMetadataEntry { jsonString } ... on FloatMetadataEntry { floatValue } } }
  }
}"""

FAILED_VIDEO_RUNS = """
{ runsOrError(filter: {statuses: [FAILURE], pipelineName: "video_pipeline"}) {
    ... on Runs { results { runId tags { key value } } } } }"""


def materialized_partitions(server: UiServer, asset: str) -> set[str]:
    data = server.graphql(MATERIALIZED_PARTITIONS, {"path": [asset]})
    return {m["partition"] for m in data["assetOrError"].get("assetMaterializations", [])}


def check_executions(server: UiServer, asset: str, check: str) -> list[dict]:
    return server.graphql(CHECK_EXECUTIONS, {"path": [asset], "check": check})["assetCheckExecutions"]


def start_server(root: Path) -> UiServer:
    home, data = root / "dagster_home", root / "data"
    home.mkdir(parents=True)
    (data / "inbox").mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    workspace = os.environ.get("FVC_UI_WORKSPACE", str(REPO_ROOT / "workspace.yaml"))
    env = {**os.environ, "DAGSTER_HOME": str(home), "FVC_DATA_DIR": str(data),
           "FVC_TRAINING_PROFILE": "demo", "PYTHONUNBUFFERED": "1"}
    log = root / "dagster-dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", workspace, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = UiServer(f"http://127.0.0.1:{port}", home, data, log, process)

    def answering():
        if process.poll() is not None:
            pytest.fail(f"dagster dev exited with {process.returncode}:\n{server.log_tail()}")
        try:
            return server.graphql("{ version }", timeout=5)["version"]
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return None

    started = time.monotonic()
    wait_for(answering, 180, "the webserver to answer GraphQL")
    server.timings["webserver_ready_s"] = round(time.monotonic() - started, 1)
    return server


def stop_server(server: UiServer) -> None:
    """SIGINT to the whole process group, then SIGKILL whatever is still there after 30 s."""
    try:
        pgid = os.getpgid(server.process.pid)
    except ProcessLookupError:
        return
    os.killpg(pgid, signal.SIGINT)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(pgid, signal.SIGKILL)  # children that outlived dagster dev (run workers)
    except ProcessLookupError:
        pass
    server.process.wait(timeout=10)


def drop_demo_videos(server: UiServer, corpus: Path) -> list[str]:
    """Land the demo videos and their manifest together: copy beside the inbox, then one rename into it.

    One rename makes both videos appear in the same sensor tick, as a batch copied
    in by a person would most of the time; the catalog must then refresh once.
    """
    from fvc_core.keys import sanitize_video_id  # noqa: PLC0415 (keeps the fixture module light)

    landing = server.data / "landing"  # same filesystem as the inbox, so the rename is atomic
    shutil.copytree(corpus, landing)
    landing.rename(server.data / "inbox" / "demo")
    return sorted(sanitize_video_id(p.stem) for p in corpus.iterdir() if p.suffix != ".csv")


def pipeline_settled(server: UiServer) -> bool:
    failed = server.graphql(FAILED_VIDEO_RUNS)["runsOrError"]["results"]
    if failed:
        pytest.fail(f"video runs failed: {[r['runId'] for r in failed]}\n{server.log_tail()}")
    for asset in PER_VIDEO_ASSETS:
        if not set(server.video_keys) <= materialized_partitions(server, asset):
            return False
    # The catalog refresh (by automation, not by us) and its folds' leakage check.
    return bool(materialized_partitions(server, "video_catalog")) and any(
        e["evaluation"] for e in check_executions(server, "folds", "no_leakage"))


_SHARED: dict[str, UiServer] = {}


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory):
    """A running `dagster dev` whose inbox received two demo videos, once they and the catalog are processed.

    Each test module imports this fixture, which pytest registers once per module; the
    module-level cache makes them share one server per session (stopped at session end).
    """
    if "server" not in _SHARED:
        _SHARED["server"] = _start_and_settle(tmp_path_factory.mktemp("ui"))
    yield _SHARED["server"]
    server = _SHARED.pop("server", None)
    if server is not None:
        _finish(server)


def _start_and_settle(root: Path) -> UiServer:
    from fvc_assets.demo.corpus import write_corpus  # noqa: PLC0415
    from tests.demo_run import SMALL_MAX_FRAMES, SMALL_SCALE  # noqa: PLC0415

    corpus = root / "corpus"
    write_corpus(corpus, n_videos=2, seed=0, scale=SMALL_SCALE, max_frames=SMALL_MAX_FRAMES)
    server = start_server(root)
    try:
        dropped = time.monotonic()
        server.video_keys = drop_demo_videos(server, corpus)
        wait_for(lambda: pipeline_settled(server), PIPELINE_TIMEOUT_S,
                 "both videos through stages 1-4 and the automated catalog refresh", interval=5)
        server.timings["drop_to_settled_s"] = round(time.monotonic() - dropped, 1)
    except BaseException:
        _finish(server)
        raise
    return server


def _finish(server: UiServer) -> None:
    stop_server(server)
    TEST_OUTPUT.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(server.log, TEST_OUTPUT / "dagster-dev.log")
