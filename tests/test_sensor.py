"""The inbox sensor: new files become partitions and run requests exactly once."""

import json
import shutil

import dagster as dg

from fvc_assets.definitions import defs
from fvc_assets.ingest.registration import load_registry
from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME
from fvc_resources.batching import BatchingPolicy
from fvc_resources.storage import StorageResource
from tests.conftest import encode_video


def tick(instance, storage, cursor):
    """One sensor evaluation, then what the daemon does with its result."""
    sensor = defs.resolve_sensor_def("inbox_sensor")
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"storage": storage, "batching": BatchingPolicy()}, repository_def=defs.get_repository_def()
    )
    result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_new_files_become_partitions_and_runs_once(fvc_env, tmp_path):
    _, data = fvc_env
    inbox = data / "inbox"
    storage = StorageResource(data_dir=str(data), inbox_settle_seconds=0)
    instance = dg.DagsterInstance.ephemeral()
    encode_video(inbox / "first video.mp4")
    (inbox / "fake").mkdir()
    encode_video(inbox / "fake" / "second.webm", codec="libvpx-vp9", options={})
    (inbox / "notes.txt").write_text("not a video")

    first = tick(instance, storage, None)
    assert sorted(r.partition_key for r in first.run_requests) == ["first_video", "second"]
    assert sorted(instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME)) == ["first_video", "second"]

    second = tick(instance, storage, first.cursor)
    assert second.run_requests == []
    assert not second.dynamic_partitions_requests

    encode_video(inbox / "third.mp4", seed=3)
    third = tick(instance, storage, second.cursor)
    assert [r.partition_key for r in third.run_requests] == ["third"]
    assert len(instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME)) == 3

    # A restarted daemon evaluates with the stored cursor: nothing is added or run again.
    restarted = tick(instance, storage, third.cursor)
    assert restarted.run_requests == []
    assert len(load_registry(storage.registry_dir)) == 3
    # The cursor names only the last tick's requests, not every video ever seen (the daemon
    # stores it with every tick; at 5,199 videos a full list would be 150 KB a tick).
    assert json.loads(third.cursor)["requested"] == ["third"]
    assert json.loads(restarted.cursor)["requested"] == []
    assert tick(instance, storage, restarted.cursor).run_requests == []


def test_same_name_in_two_folders_gets_a_hash_suffixed_key(fvc_env):
    _, data = fvc_env
    inbox = data / "inbox"
    storage = StorageResource(data_dir=str(data), inbox_settle_seconds=0)
    instance = dg.DagsterInstance.ephemeral()
    encode_video(inbox / "a" / "clip.mp4", seed=1)
    encode_video(inbox / "b" / "clip.mp4", seed=2)
    keys = sorted(r.partition_key for r in tick(instance, storage, None).run_requests)
    assert keys[0] == "clip"
    assert keys[1].startswith("clip-") and len(keys[1]) == len("clip-") + 8
    records = load_registry(storage.registry_dir)
    assert records[keys[0]].sha256 != records[keys[1]].sha256


def test_registered_but_missing_partition_is_added_after_a_crash(fvc_env):
    """A tick that registered files but died before the daemon stored its result loses nothing."""
    _, data = fvc_env
    storage = StorageResource(data_dir=str(data), inbox_settle_seconds=0)
    instance = dg.DagsterInstance.ephemeral()
    encode_video(data / "inbox" / "v.mp4")
    sensor = defs.resolve_sensor_def("inbox_sensor")
    context = dg.build_sensor_context(
        instance=instance, resources={"storage": storage, "batching": BatchingPolicy()}, repository_def=defs.get_repository_def()
    )
    lost = sensor(context)
    assert [r.partition_key for r in lost.run_requests] == ["v"]  # ...but never applied

    retried = tick(instance, storage, None)
    assert [r.partition_key for r in retried.run_requests] == ["v"]
    assert instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME) == ["v"]
    assert retried.run_requests[0].run_key == lost.run_requests[0].run_key  # the daemon dedupes by run key


def test_symlink_leaving_the_inbox_is_reported_not_ingested(fvc_env, tmp_path):
    _, data = fvc_env
    outside = encode_video(tmp_path / "outside.mp4")
    (data / "inbox" / "link.mp4").symlink_to(outside)
    shutil.copy(outside, data / "inbox" / "inside.mp4")
    instance = dg.DagsterInstance.ephemeral()
    result = tick(instance, StorageResource(data_dir=str(data), inbox_settle_seconds=0), None)
    assert [r.partition_key for r in result.run_requests] == ["inside"]
