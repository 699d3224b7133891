"""A safe inbox: files still being written wait, unfinished names never register, changed content
becomes a partition of its own; and, through a real daemon, a video written slowly into the inbox
is registered once, after the writer finished, whole."""

import os
import threading
import time

import av
import dagster as dg
import pytest

from fvc_assets.ingest.registration import (
    changed_since_registered,
    load_registry,
    register_inbox_files,
)
from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME
from tests.conftest import encode_video
from tests.daemon_harness import kill_group, start_daemon, tail, wait_until


def age(path, seconds: float) -> None:
    """Set the file's mtime ``seconds`` into the past."""
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def test_a_file_registers_only_once_it_has_settled(tmp_path):
    inbox, registry = tmp_path / "inbox", tmp_path / "registry"
    video = encode_video(inbox / "slow.mp4", frames=8)
    scan = register_inbox_files(inbox, registry, settle_seconds=5)
    assert not scan.new and [w.path for w in scan.waiting] == [str(video)]
    assert 0 <= scan.waiting[0].modified_seconds_ago < 5
    age(video, 6)
    scan = register_inbox_files(inbox, registry, settle_seconds=5)
    assert [r.relpath for r in scan.new] == ["slow.mp4"] and not scan.waiting
    assert load_registry(registry)["slow"].mtime_ns == video.stat().st_mtime_ns


def test_unfinished_names_are_never_registered(tmp_path):
    inbox, registry = tmp_path / "inbox", tmp_path / "registry"
    whole = encode_video(tmp_path / "whole.mp4", frames=8).read_bytes()
    for name in ("a.mp4.part", "b.mp4.crdownload", "c.mp4.tmp", ".d.mp4"):
        (inbox / name).parent.mkdir(parents=True, exist_ok=True)
        (inbox / name).write_bytes(whole)
        age(inbox / name, 60)
    scan = register_inbox_files(inbox, registry, settle_seconds=5)
    assert not scan.new and not scan.waiting
    assert [r.path for r in scan.rejected] == [str(inbox / ".d.mp4")]  # said out loud: it looks like a video


def test_new_content_at_a_registered_path_is_a_new_partition_and_the_old_one_refuses_it(tmp_path):
    inbox, registry = tmp_path / "inbox", tmp_path / "registry"
    video = encode_video(inbox / "clip.mp4", frames=8, seed=1)
    age(video, 60)
    (first,) = register_inbox_files(inbox, registry, settle_seconds=5).new
    assert changed_since_registered(first) is None

    # Touched, same bytes: nothing new; the new mtime is noted so the file is not hashed again.
    age(video, 30)
    scan = register_inbox_files(inbox, registry, settle_seconds=5)
    assert not scan.new and not scan.changed
    assert load_registry(registry)["clip"].mtime_ns == video.stat().st_mtime_ns
    assert changed_since_registered(load_registry(registry)["clip"]) is None

    # Replaced in place with other content.
    encode_video(video, frames=10, seed=2)
    age(video, 20)
    scan = register_inbox_files(inbox, registry, settle_seconds=5)
    (second,) = scan.new
    assert second.key.startswith("clip-") and second.relpath == "clip.mp4"
    assert [(c.old_key, c.new_key) for c in scan.changed] == [("clip", second.key)]
    assert set(load_registry(registry)) == {"clip", second.key}  # the old partition's record is kept
    why = changed_since_registered(load_registry(registry)["clip"])
    assert why and "changed since it was registered" in why
    assert changed_since_registered(second) is None
    assert not register_inbox_files(inbox, registry, settle_seconds=5).new  # once


def test_fvc_run_waits_for_files_being_written_then_reports_the_rest(fvc_env):
    from fvc_assets.launch.inbox import register_inbox
    from fvc_resources.storage import StorageResource

    _, data = fvc_env
    fresh = encode_video(data / "inbox" / "fresh.mp4", frames=8)
    storage = StorageResource(data_dir=str(data), inbox_settle_seconds=2)
    waited = []
    with dg.DagsterInstance.get() as instance:
        os.utime(fresh)  # just written, whatever the instance's start took on a busy machine
        scan = register_inbox(instance, storage, on_wait=waited.append)
        assert [r.relpath for r in scan.new] == ["fresh.mp4"] and not scan.waiting
        assert [w.path for w in waited[0]] == [str(fresh)]
        assert instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME) == ["fresh"]
        # A file that keeps changing is not waited for past the limit: it stays "waiting".
        busy = encode_video(data / "inbox" / "busy.mp4", frames=8)
        os.utime(busy)
        scan = register_inbox(instance, storage, wait_limit_s=0.5)
        assert not scan.new and [w.path for w in scan.waiting] == [str(busy)]


def write_slowly(source: bytes, target, pieces: int, pause_s: float, done: dict) -> None:
    step = -(-len(source) // pieces)
    with open(target, "wb") as out:
        for start in range(0, len(source), step):
            out.write(source[start:start + step])
            out.flush()
            os.fsync(out.fileno())
            time.sleep(pause_s)
    done["at"] = time.time()


def decoded_frames(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_video_written_slowly_under_a_running_daemon_registers_once_whole(fvc_env, tmp_path):
    home, data = fvc_env
    # Matroska plays while truncated: a registrar that did not wait would ingest a partial video.
    source = encode_video(tmp_path / "source.mkv", frames=200, width=160, height=120).read_bytes()
    target = data / "inbox" / "slow.mkv"
    log = tmp_path / "daemon.log"
    daemon = start_daemon(home, data, log)
    done: dict = {}
    try:
        with dg.DagsterInstance.get() as instance:
            # The sensor's first tick, before anything is in the inbox.
            wait_until(lambda: (data / "registry").exists(), 120, "the inbox sensor's first tick", daemon, log,
                       interval=0.5)
            writer = threading.Thread(target=write_slowly, args=(source, target, 12, 3.0, done))
            writer.start()  # 12 pieces, 3 s apart: about 36 s, two or more sensor ticks
            writer.join()
            wait_until(lambda: load_registry(data / "registry"), 120, "the video's registration", daemon, log,
                       interval=0.5)
            (registration,) = load_registry(data / "registry").values()
            assert registration.registered_at >= done["at"], "registered while it was still being written"
            assert registration.size_bytes == len(source)
            key = registration.key

            def run_ended():
                runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": key}))
                return runs if runs and all(r.is_finished for r in runs) else None

            (run,) = wait_until(run_ended, 240, "the video's run", daemon, log, interval=1)
            assert run.status == dg.DagsterRunStatus.SUCCESS, tail(log)
            assert instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME) == [key]
            ticks = [t for t in instance.get_ticks(*_sensor_ids(instance)) if t.skip_reason]
            assert any("waiting for 1 file(s) still being written" in t.skip_reason for t in ticks), tail(log)
    finally:
        kill_group(daemon)
    assert decoded_frames(data / "videos" / key / "clips" / "original.mp4") == 200
    assert len(load_registry(data / "registry")) == 1


def _sensor_ids(instance):
    from dagster._core.scheduler.instigation import InstigatorType

    (state,) = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
                if s.name == "inbox_sensor"]
    return state.instigator_origin_id, state.selector_id
