"""End to end through the running daemon: videos land in the inbox, nobody clicks, and the GraphQL API shows
the partitions, the check results, and the automated catalog refresh.

Server: tests/ui_server.py (one `dagster dev` for this module and tests/test_browser.py).
"""

import json
import time

import pytest

from tests.ui_server import (  # noqa: F401 (ui_server is a fixture)
    PER_VIDEO_ASSETS,
    check_executions,
    materialized_partitions,
    ui_server,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# (asset, check, severity when it fails): per-video checks, all run with their asset.
PER_VIDEO_CHECKS = [
    ("augmented_videos", "clips_complete", "ERROR"),
    ("handcrafted_features", "features_complete", "ERROR"),
    ("handcrafted_features", "features_sane", "ERROR"),
    ("scaled_videos", "scaled_complete", "ERROR"),
    ("scaled_videos", "autoencoder_fallbacks", "WARN"),
    ("scaled_features", "scaled_features_complete", "ERROR"),
    ("scaled_features", "scaled_features_sane", "ERROR"),
]

RUN_TAGS = """query($runId: ID!) { runOrError(runId: $runId) { ... on Run { jobName status tags { key value } } } }"""
REPOSITORY = """
{ repositoryOrError(repositorySelector: {repositoryLocationName: "fvc", repositoryName: "__repository__"}) {
    ... on Repository { schedules { name } jobs { name } sensors { name sensorState { status } } } } }"""
def run_of(server, run_id: str) -> dict:
    run = server.graphql(RUN_TAGS, {"runId": run_id})["runOrError"]
    return {"job": run["jobName"], "status": run["status"], "tags": {t["key"]: t["value"] for t in run["tags"]}}


def materializations(server, asset: str) -> list[dict]:
    query = """query($path: [String!]!) { assetOrError(assetKey: {path: $path}) { ... on Asset {
      assetMaterializations(limit: 50) { partition runId metadataEntries { label } } } } }"""
    return server.graphql(query, {"path": [asset]})["assetOrError"]["assetMaterializations"]


def test_landed_videos_become_partitions_materialised_by_the_inbox_sensor(ui_server):
    keys = set(ui_server.video_keys)
    assert len(keys) == 2
    for asset in PER_VIDEO_ASSETS:
        assert keys <= materialized_partitions(ui_server, asset), asset
    # Nobody launched them: every run that made raw_videos came from the inbox sensor.
    for m in materializations(ui_server, "raw_videos"):
        run = run_of(ui_server, m["runId"])
        assert run["job"] == "video_pipeline"
        assert run["tags"].get("dagster/sensor_name") == "inbox_sensor"
        assert run["tags"].get("dagster/partition") == m["partition"]
    # raw_videos and augmented_videos carry their preview images for the UI.
    labels = {e["label"] for m in materializations(ui_server, "raw_videos") for e in m["metadataEntries"]}
    assert any("preview" in label for label in labels), labels


@pytest.mark.parametrize(("asset", "check", "severity"), PER_VIDEO_CHECKS)
def test_per_video_checks_ran_with_metadata(ui_server, asset, check, severity):
    executions = [e for e in check_executions(ui_server, asset, check) if e["evaluation"]]
    # The checks are not partitioned themselves: each ran in its video's run, tagged with the partition.
    by_partition = {run_of(ui_server, e["runId"])["tags"].get("dagster/partition"): e["evaluation"]
                    for e in executions}
    assert set(ui_server.video_keys) <= set(by_partition), f"{check} did not run on every video"
    for partition, evaluation in by_partition.items():
        assert evaluation["success"], f"{check} failed on {partition}"
        assert evaluation["severity"] == severity
        assert evaluation["metadataEntries"], f"{check} on {partition} carries no metadata"


def test_catalog_refreshed_once_by_automation_and_leakage_check_blocks(ui_server):
    catalog = materializations(ui_server, "video_catalog")
    # Two videos landed together: one catalog refresh, not one per video.
    assert len(catalog) == 1, [m["runId"] for m in catalog]
    run = run_of(ui_server, catalog[0]["runId"])
    assert run["tags"].get("dagster/sensor_name") == "stage5_automation", run["tags"]
    assert run["tags"].get("dagster/from_automation_condition") == "true", run["tags"]

    # Two videos are far too few for 5 folds: the blocking leakage check runs and fails with ERROR,
    # and says why in its metadata.
    executions = [e for e in check_executions(ui_server, "folds", "no_leakage") if e["evaluation"]]
    assert executions
    evaluation = executions[0]["evaluation"]
    assert not evaluation["success"]
    assert evaluation["severity"] == "ERROR"
    assert evaluation["metadataEntries"]


AUTOMATION_TICKS = """
query($name: String!) {
  sensorOrError(sensorSelector: {repositoryLocationName: "fvc", repositoryName: "__repository__", sensorName: $name}) {
    ... on Sensor { sensorState { ticks(limit: 20) { timestamp status runIds } } } } }"""


def two_automation_ticks_after(server, since: float, what: str) -> list[dict]:
    def ticks():
        state = server.graphql(AUTOMATION_TICKS, {"name": "stage5_automation"})["sensorOrError"]["sensorState"]
        later = [t for t in state["ticks"] if t["timestamp"] > since]
        return later if len(later) >= 2 else None

    return wait_for(ticks, 120, f"two automation ticks after {what}", interval=5)


def test_rerunning_an_unchanged_video_does_not_refresh_the_catalog(ui_server, monkeypatch):
    """Same bytes in, same data versions out: automation sees nothing new, so no second catalog run."""
    import dagster as dg
    from fvc_assets.definitions import defs

    monkeypatch.setenv("DAGSTER_HOME", str(ui_server.home))
    monkeypatch.setenv("FVC_DATA_DIR", str(ui_server.data))
    key = ui_server.video_keys[0]
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def("video_pipeline").execute_in_process(instance=instance, partition_key=key)
        assert result.success
        finished = time.time()
        for asset in ("raw_videos", "augmented_videos", "handcrafted_features", "scaled_features"):
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=2).records
            versions = [r.asset_materialization.tags["dagster/data_version"] for r in records]
            assert len(versions) == 2 and versions[0] == versions[1], (asset, versions)

    later = two_automation_ticks_after(ui_server, finished, "the re-run")
    assert all(not t["runIds"] for t in later), later
    assert len(materializations(ui_server, "video_catalog")) == 1


def test_retraining_waits_for_a_passing_leakage_check(ui_server):
    """The folds failed no_leakage: automation keeps ticking and requests no training (nor anything after)."""
    folds = wait_for(lambda: materializations(ui_server, "folds"), 120, "folds to be materialised", interval=5)
    later = two_automation_ticks_after(ui_server, time.time(), "the folds")
    assert all(not t["runIds"] for t in later), later
    assert folds
    for asset in ("fold_results", "ensemble_results", "model_comparison"):
        assert materializations(ui_server, asset) == [], asset


def test_sensors_on_by_default_no_schedules_and_stage_jobs(ui_server):
    repo = ui_server.graphql(REPOSITORY)["repositoryOrError"]
    assert repo["schedules"] == []
    sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert set(sensors) == {"inbox_sensor", "batch_stages", "stage5_automation"}, sensors
    for name in sensors:
        assert sensors.get(name) == "RUNNING", sensors
    jobs = {j["name"] for j in repo["jobs"]}
    assert {"video_pipeline", "ingest", "augment", "features", "scale", "catalog", "train", "ensemble",
            "compare", "promote"} <= jobs


def test_timings_recorded(ui_server):
    # Not an assertion on speed: a record of what this machine took, in the log of the test run.
    print(json.dumps({**ui_server.timings, "now": time.strftime("%H:%M:%S")}))
    assert ui_server.timings["drop_to_settled_s"] > 0
