"""Many videos per run: a batch records each video's own materialisation and checks, a broken video
fails alone, and a bulk arrival needs at most a tenth of a run launch per video."""

import os
import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fvc_assets.jobs import BATCH_STAGES, VIDEO_PIPELINE_JOB
from fvc_core.batches import Batching, consecutive_stretches, contiguous_batches
from fvc_assets.launch.client import LAUNCHED_BY_TAG
from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME
from fvc_assets.steps.per_video import FAILED_VIDEOS, over_videos
from tests.demo_run import SMALL

FVC = [sys.executable, "-m", "fvc_assets.cli"]
PER_VIDEO_ASSETS = ("raw_videos", "augmented_videos", "handcrafted_features", "scaled_videos", "scaled_features")


def test_a_bulk_arrival_needs_at_most_a_tenth_of_a_launch_per_video():
    order = [f"v{i:05d}" for i in range(1000)]
    stages = len(BATCH_STAGES[VIDEO_PIPELINE_JOB])
    batching = Batching()
    assert batching.applies(1000) and not batching.applies(batching.above)
    batches = contiguous_batches(order, order, batching.size)
    assert [k for b in batches for k in b] == order
    assert stages * len(batches) / len(order) <= 0.1
    assert max(map(len, batches)) - min(map(len, batches)) <= 1  # near-equal, never a batch of one at the end
    assert len(contiguous_batches(order, order[:51], 50)) == 2 and len(contiguous_batches(order, order[:51], 50)[1]) == 25
    # Runs the queue starts side by side: never fewer batches than that (48 videos, 2 at once: 2 of 24).
    assert [len(b) for b in contiguous_batches(order, order[:48], 50, at_least=2)] == [24, 24]
    assert len(contiguous_batches(order, order, 50, at_least=2)) == 20

    # A range is consecutive partitions: a video not to run (up to date, or failed earlier) cuts it.
    wanted = [k for k in order[:10] if k not in ("v00003", "v00007")]
    assert consecutive_stretches(order, wanted) == [order[0:3], order[4:7], order[8:10]]
    assert contiguous_batches(order, wanted, 2) == [order[0:2], order[2:3], order[4:6], order[6:7], order[8:10]]
    with pytest.raises(ValueError, match="not partitions"):
        contiguous_batches(order, ["elsewhere"], 5)


LETTERS = dg.StaticPartitionsDefinition(["a", "b", "c", "d"])


@dg.asset(partitions_def=LETTERS, output_required=False,
          check_specs=[dg.AssetCheckSpec("looks_right", asset="letter", blocking=True, partitions_def=LETTERS)])
@over_videos
def letter(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    key = context.partition_key
    if key == "b":
        raise dg.Failure(description=f"{key}: broken file")
    context.add_asset_metadata({"seen": key})
    context.log.info("looked at")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(f"version-of-{key}"),
        check_results=[dg.AssetCheckResult(check_name="looks_right", passed=key != "c", metadata={"key": key})],
    )


@dg.asset(partitions_def=LETTERS, deps=[letter], output_required=False, code_version="7")
@over_videos
def after_letter(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(data_version=dg.DataVersion(f"after-{context.partition_key}"))


def latest(instance, asset: str, key: str):
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1).records[0]


def test_a_batch_step_records_each_partition_and_fails_only_the_ones_that_failed():
    with dg.instance_for_test() as instance:
        result = dg.materialize([letter], instance=instance, raise_on_error=False,
                                tags={ASSET_PARTITION_RANGE_START_TAG: "a", ASSET_PARTITION_RANGE_END_TAG: "d"})
        assert not result.success
        (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        failed = failure.step_failure_data.user_failure_data.metadata[FAILED_VIDEOS].value
        assert failed == {"b": "b: broken file", "c": "check looks_right failed"}
        said = [e.message for e in result.all_events if e.event_type == dg.DagsterEventType.LOGS_CAPTURED] + [
            r.user_message for r in instance.all_logs(result.run_id) if r.dagster_event is None]
        assert {"a: looked at", "c: looked at", "d: looked at"} <= set(said), said  # each line names its video

        status = get_and_update_asset_status_cache_value(instance, dg.AssetKey("letter"), LETTERS)
        # c materialised and its blocking check failed, as in a one-partition run; b never materialised.
        assert set(status.deserialize_materialized_partition_subsets(LETTERS).get_partition_keys()) == {"a", "c", "d"}
        assert set(status.deserialize_failed_partition_subsets(LETTERS).get_partition_keys()) == {"b"}
        for key in "acd":
            materialization = latest(instance, "letter", key).asset_materialization
            assert materialization.tags["dagster/data_version"] == f"version-of-{key}"
            assert materialization.metadata["seen"].value == key
        check = dg.AssetCheckKey(dg.AssetKey("letter"), "looks_right")
        evaluations = {r.partition: r.status.value
                       for r in instance.event_log_storage.get_asset_check_execution_history(check, limit=10)}
        assert evaluations == {"a": "SUCCEEDED", "b": "PLANNED", "c": "FAILED", "d": "SUCCEEDED"}  # b: never checked

        # Downstream, in a batch of its own: each partition's lineage is its own parent partition's.
        dg.materialize([letter.to_source_asset(), after_letter], instance=instance,
                       tags={ASSET_PARTITION_RANGE_START_TAG: "c", ASSET_PARTITION_RANGE_END_TAG: "d"},
                       selection=[after_letter])
        for key in "cd":
            tags = latest(instance, "after_letter", key).asset_materialization.tags
            assert tags["dagster/code_version"] == "7"
            assert tags["dagster/input_data_version/letter"] == f"version-of-{key}"
            assert tags["dagster/input_event_pointer/letter"] == str(latest(instance, "letter", key).storage_id)


def test_fvc_run_batches_a_bulk_arrival_and_a_broken_video_fails_alone(fvc_env):
    home, data = fvc_env
    inbox = data / "inbox"
    env = {**os.environ, "FVC_INBOX_SETTLE_S": "0"}
    subprocess.run([*FVC, "demo-corpus", "--out", str(inbox), "--videos", "4", "--seed", "3", *SMALL],
                   env=env, capture_output=True, text=True, check=True)
    (inbox / "i_broken.mp4").write_bytes(os.urandom(20_000))  # sorts fourth of five: a gap after stage 1

    run = subprocess.run([*FVC, "run", "--skip-training", "--batch-above", "2", "--batch-size", "10"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stdout + run.stderr
    # Two runs at once (the instance's max_concurrent_runs): five videos make two batches, not one.
    assert "video_pipeline: 5 video(s) in 2 batch(es)" in run.stdout, run.stdout
    assert "5 video partition(s) run, 1 failed" in run.stdout
    (failed_line,) = [line for line in run.stdout.splitlines() if line.startswith("FAILED ")]
    assert failed_line.startswith(f"FAILED i_broken ({inbox / 'i_broken.mp4'}): ingest: ")
    assert "not a readable video container" in failed_line

    instance = dg.DagsterInstance.get()
    order = instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME)
    assert order.index("i_broken") == 3
    good = set(order) - {"i_broken"}
    runs = instance.get_runs(dg.RunsFilter(tags={LAUNCHED_BY_TAG: "fvc run"}))
    videos_of = {}
    for run in runs:
        start = run.tags.get(ASSET_PARTITION_RANGE_START_TAG) or run.tags["dagster/partition"]
        end = run.tags.get(ASSET_PARTITION_RANGE_END_TAG) or start
        videos_of.setdefault(run.job_name, []).extend(order[order.index(start):order.index(end) + 1])
    # Stage 1 (ingest) runs all five, each once; the broken video leaves the later stages, cutting their ranges.
    assert sorted(videos_of) == ["augment", "features", "ingest", "scale"]
    assert sorted(videos_of.pop("ingest")) == sorted(order)
    for stage, videos in videos_of.items():
        assert sorted(videos) == sorted(good), stage
    assert len(runs) <= 2 + 3 * 3

    partitions_def = dg.DynamicPartitionsDefinition(name=VIDEOS_PARTITIONS_NAME)
    for asset in PER_VIDEO_ASSETS:
        status = get_and_update_asset_status_cache_value(instance, dg.AssetKey(asset), partitions_def)
        assert set(status.deserialize_materialized_partition_subsets(partitions_def).get_partition_keys()) == good
        failed = set(status.deserialize_failed_partition_subsets(partitions_def).get_partition_keys())
        assert failed == ({"i_broken"} if asset == "raw_videos" else set()), asset
    check = dg.AssetCheckKey(dg.AssetKey("augmented_videos"), "clips_complete")
    passed = {r.partition for r in instance.event_log_storage.get_asset_check_execution_history(check, limit=20)
              if r.status.value == "SUCCEEDED"}
    assert passed == good

    # The videos' data versions and lineage are what Dagster's stale-status resolver reads: the next
    # plan finds the four up to date and runs only the broken one again (one video: no batch).
    again = subprocess.run([*FVC, "run", "--skip-training", "--batch-above", "2"], env=env,
                           capture_output=True, text=True, timeout=600)
    assert "video_pipeline: 1 run(s)" in again.stdout, again.stdout + again.stderr
    assert "1 video partition(s) run, 1 failed" in again.stdout


def test_the_inbox_sensor_batches_many_arrivals_and_batch_stages_carries_them_through(fvc_env):
    """Sensors evaluated as the daemon would, their run requests executed as the daemon's runs would be."""
    from benchmarks.orchestration import make_tiny_corpus
    from fvc_assets.definitions import defs
    from fvc_assets.ingest.batch_stages import NEXT_STAGES_TAG
    from fvc_resources.batching import BatchingPolicy
    from fvc_resources.storage import StorageResource

    _, data = fvc_env
    make_tiny_corpus(data / "inbox", 3)
    (data / "inbox" / "tiny_001_broken.mp4").write_bytes(b"not a video" * 100)  # sorts second of four
    resources = {"storage": StorageResource(data_dir=str(data), inbox_settle_seconds=0),
                 "batching": BatchingPolicy(size=10, above=2)}
    instance = dg.DagsterInstance.get()
    inbox_sensor, batch_stages = defs.resolve_sensor_def("inbox_sensor"), defs.resolve_sensor_def("batch_stages")

    result = inbox_sensor(dg.build_sensor_context(instance=instance, resources=resources,
                                                  repository_def=defs.get_repository_def()))
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    order = instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME)
    assert order == ["tiny_000", "tiny_001", "tiny_001_broken", "tiny_002"]
    # Two runs at once (the instance's max_concurrent_runs): two batches of two.
    assert [(r.job_name, r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG],
             r.tags[NEXT_STAGES_TAG]) for r in result.run_requests] == [
        ("ingest", "tiny_000", "tiny_001", "augment,scale,features"),
        ("ingest", "tiny_001_broken", "tiny_002", "augment,scale,features")]

    requested, cursor, stages_run = {r.run_key for r in result.run_requests}, None, []
    pending = result.run_requests
    while pending:
        for request in pending:
            job = defs.resolve_job_def(request.job_name)
            job.execute_in_process(instance=instance, raise_on_error=False, partition_key=request.partition_key,
                                   tags={k: v for k, v in request.tags.items() if k != "dagster/partition"})
            videos = request.partition_key or (request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[
                ASSET_PARTITION_RANGE_END_TAG])
            stages_run.append((request.job_name, videos))
        result = batch_stages(dg.build_sensor_context(instance=instance, cursor=cursor))
        cursor = result.cursor
        # The daemon creates a run once per run key: a request it has seen (a run ended near the cursor is
        # looked at again, for clocks that disagree) makes no second run.
        pending = [r for r in result.run_requests or [] if r.run_key not in requested]
        requested |= {r.run_key for r in pending}
    # The broken video fails ingest and leaves the batch: the range is cut around it from stage 2 on.
    assert stages_run == [("ingest", ("tiny_000", "tiny_001")), ("ingest", ("tiny_001_broken", "tiny_002"))] + [
        (stage, videos) for stage in ("augment", "scale", "features") for videos in (("tiny_000", "tiny_001"), "tiny_002")]

    partitions_def = dg.DynamicPartitionsDefinition(name=VIDEOS_PARTITIONS_NAME)
    for asset in PER_VIDEO_ASSETS:
        status = get_and_update_asset_status_cache_value(instance, dg.AssetKey(asset), partitions_def)
        assert set(status.deserialize_materialized_partition_subsets(partitions_def).get_partition_keys()) == {
            "tiny_000", "tiny_001", "tiny_002"}, asset
    # A tick that starts over (no cursor: the daemon lost it) asks for nothing new: the run keys repeat.
    again = batch_stages(dg.build_sensor_context(instance=instance, cursor=None))
    assert {r.run_key for r in again.run_requests or []} <= requested
