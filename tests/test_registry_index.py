"""The registry reads as one index file, never a file per video, and the index is only ever a copy of the records."""

import json
import pathlib

from fvc_assets.ingest.registration import INDEX_NAME, load_registration, load_registry, register_new_videos


def make_inbox(inbox: pathlib.Path, n: int) -> None:
    inbox.mkdir(parents=True)
    for i in range(n):
        (inbox / f"v{i:03d}.mp4").write_bytes(f"video {i}".encode() * 100)


def test_loading_the_registry_reads_the_index_not_every_record(tmp_path, monkeypatch):
    make_inbox(tmp_path / "inbox", 40)
    registered, _ = register_new_videos(tmp_path / "inbox", tmp_path / "registry")
    assert len(registered) == 40
    reads = []
    original = pathlib.Path.read_text
    monkeypatch.setattr(pathlib.Path, "read_text", lambda self, *a, **k: reads.append(self.name) or original(self, *a, **k))
    registry = load_registry(tmp_path / "registry")
    assert sorted(registry) == sorted(r.key for r in registered)
    assert reads == [INDEX_NAME]  # one file, whatever the number of videos
    assert registry["v007"] == next(r for r in registered if r.key == "v007")


def test_records_the_index_lacks_or_no_longer_has_are_seen_and_the_index_rebuilt(tmp_path):
    make_inbox(tmp_path / "inbox", 3)
    registry_dir = tmp_path / "registry"
    register_new_videos(tmp_path / "inbox", registry_dir)
    # A record claimed by a registrar that died before indexing it, and one removed by hand.
    record = json.loads((registry_dir / "v000.json").read_text())
    (registry_dir / "extra.json").write_text(json.dumps({**record, "key": "extra", "sha256": "0" * 64}))
    (registry_dir / "v002.json").unlink()
    registry = load_registry(registry_dir)
    assert sorted(registry) == ["extra", "v000", "v001"]
    indexed = [json.loads(line)["key"] for line in (registry_dir / INDEX_NAME).read_text().splitlines()]
    assert sorted(indexed) == ["extra", "v000", "v001"]
    assert load_registration(registry_dir, "extra").sha256 == "0" * 64
    assert load_registration(registry_dir, "v002") is None


def test_a_line_still_being_appended_is_not_read(tmp_path):
    make_inbox(tmp_path / "inbox", 2)
    registry_dir = tmp_path / "registry"
    register_new_videos(tmp_path / "inbox", registry_dir)
    with open(registry_dir / INDEX_NAME, "a") as f:
        f.write('{"key": "half')  # an append in progress: no newline yet
    assert sorted(load_registry(registry_dir)) == ["v000", "v001"]


def test_a_videos_step_reads_its_own_record_and_the_index_not_the_whole_registry(tmp_path, monkeypatch):
    from fvc_assets.ingest.assets import identify_video
    from fvc_resources.storage import StorageResource

    inbox = tmp_path / "inbox"
    make_inbox(inbox, 30)
    # A manifest names v001 by platform id; v029 holds the same bytes under another name.
    (inbox / "fvc.csv").write_text("cascade_id,video_url,label\nf7,https://www.youtube.com/watch?v=v001,fake\n")
    (inbox / "v029.mp4").write_bytes((inbox / "v001.mp4").read_bytes())
    storage = StorageResource(data_dir=str(tmp_path), inbox_settle_seconds=0)
    register_new_videos(inbox, storage.registry_dir)
    reads = []
    original = pathlib.Path.read_text
    monkeypatch.setattr(pathlib.Path, "read_text", lambda self, *a, **k: reads.append(self.name) or original(self, *a, **k))
    registration, _, identity = identify_video(storage, "v029")
    registry_reads = [name for name in reads if name.endswith((".json", ".jsonl"))]
    assert sorted(registry_reads) == sorted(["v029.json", INDEX_NAME]), reads
    assert registration.key == "v029"
    # The identical file links it to v001's cascade although no manifest row names v029.
    assert identity["dup_group"] == "cascade:f7" and identity["label"] == "unknown"
    assert identify_video(storage, "v001")[2]["dup_group"] == "cascade:f7"
    assert identify_video(storage, "v005")[2]["dup_group"].startswith("hash:")
