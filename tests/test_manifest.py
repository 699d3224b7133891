"""Manifest parsing against the real FVC manifests, and against broken ones."""

from collections import Counter
from pathlib import Path

from fvc_assets.ingest.groups import dup_groups, url_node
from fvc_assets.ingest.manifest import parse_video_url, read_manifest, rows_for_file


def test_fvc_manifest_labels_and_platforms(fvc_corpus_dir):
    manifest = read_manifest(fvc_corpus_dir / "FVC.csv")
    assert manifest.problems == []
    assert len(manifest.rows) == 380
    assert Counter(r.label for r in manifest.rows) == {"fake": 200, "real": 180}
    assert Counter(r.platform for r in manifest.rows) == {"youtube": 347, "facebook": 33}
    assert all(r.platform_id for r in manifest.rows), "every FVC URL names its platform id"


def test_fvc_dup_manifest_labels_and_platforms(fvc_corpus_dir):
    manifest = read_manifest(fvc_corpus_dir / "FVC_dup.csv")
    assert len(manifest.rows) + sum("duplicate of line" in p for p in manifest.problems) == 5199
    labels = Counter(r.label for r in manifest.rows)
    assert set(labels) == {"fake", "real", "uncertain", "debunked", "parody"}
    platforms = Counter(r.platform for r in manifest.rows)
    assert set(platforms) == {"youtube", "facebook", "twitter"}
    assert platforms["twitter"] >= 100


def test_cascades_sharing_a_url_form_one_group(fvc_corpus_dir):
    rows = read_manifest(fvc_corpus_dir / "FVC_dup.csv").rows
    links = [(r.cascade_id, url_node(r.platform, r.platform_id, r.video_url)) for r in rows]
    cascades_by_url: dict[str, set[str]] = {}
    for cascade, url in links:
        cascades_by_url.setdefault(url, set()).add(cascade)
    shared = [c for c in cascades_by_url.values() if len(c) > 1]
    assert shared, "the FVC manifests have URLs in more than one cascade"
    # One pseudo-video per cascade, so we can read off each cascade's group.
    cascades = sorted({c for c, _ in links})
    groups = dup_groups(links, [(c, f"h{c}", [c]) for c in cascades])
    for members in shared:
        assert len({groups[c] for c in members}) == 1
    assert len(set(groups.values())) < len(cascades)


def test_platform_ids_from_urls():
    assert parse_video_url("https://www.youtube.com/watch?v=-Wgsj0ne_9M") == ("youtube", "-Wgsj0ne_9M")
    assert parse_video_url("https://youtu.be/AEPvSo8bE2I") == ("youtube", "AEPvSo8bE2I")
    assert parse_video_url("https://www.facebook.com/palasqueseaoficial/videos/1542574069191584/") == (
        "facebook",
        "1542574069191584",
    )
    assert parse_video_url("https://www.facebook.com/video.php?v=10153") == ("facebook", "10153")
    assert parse_video_url("https://twitter.com/someone/status/8123456789/video/1") == ("twitter", "8123456789")
    assert parse_video_url("https://x.com/someone/status/99") == ("twitter", "99")
    assert parse_video_url("https://vimeo.com/123") == ("other", None)
    assert parse_video_url("") == (None, None)


def test_rows_find_files_by_platform_id_or_path(tmp_path: Path):
    (tmp_path / "m.csv").write_text(
        "cascade_id,video_url,label,path\n"
        "f0,https://www.youtube.com/watch?v=-Wgsj0ne_9M,fake,\n"
        "r0,https://example.org/v,real,clips/local.mp4\n"
    )
    rows = read_manifest(tmp_path / "m.csv").rows
    assert [r.cascade_id for r in rows_for_file(rows, tmp_path / "-Wgsj0ne_9M.mp4")] == ["f0"]
    assert [r.cascade_id for r in rows_for_file(rows, tmp_path / "clips" / "local.mp4")] == ["r0"]
    assert rows_for_file(rows, tmp_path / "unrelated.mp4") == []


def test_broken_manifests_report_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "cascade_id,video_url,label\n"
        "f0,https://youtu.be/aaa,fake\n"
        "f0,https://youtu.be/aaa,fake\n"  # duplicate
        ",https://youtu.be/bbb,real\n"  # no cascade
        "f1,https://youtu.be/ccc,fake,extra\n"  # too many fields
        "f2,https://youtu.be/ddd,satire\n"  # unknown label: kept, reported
    )
    manifest = read_manifest(bad)
    assert [r.line for r in manifest.rows] == [2, 6]
    text = "\n".join(manifest.problems)
    assert f"{bad}:3: duplicate of line 2" in text
    assert f"{bad}:4:" in text and f"{bad}:5:" in text
    assert "unknown label 'satire'" in text

    other = tmp_path / "other.csv"
    other.write_text("name,size\na,1\n")
    assert read_manifest(other).rows == []
    assert "missing column(s) cascade_id, video_url, label" in read_manifest(other).problems[0]


def test_content_hash_joins_files_without_manifest():
    groups = dup_groups([], [("a", "hash1", []), ("b", "hash1", []), ("c", "hash2", [])])
    assert groups["a"] == groups["b"] != groups["c"]
    assert groups["c"].startswith("hash:")


def test_the_manipulation_column_reaches_each_row_and_video(tmp_path):
    from fvc_assets.ingest.describe import manipulation_of

    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "b.mp4").write_bytes(b"x")
    (tmp_path / "m.csv").write_text(
        "cascade_id,video_url,label,manipulation,path\n"
        "c1,,fake,splice,a.mp4\nc2,,real,,b.mp4\nc3,,fake,flicker,a.mp4\n")
    manifest = read_manifest(tmp_path / "m.csv")
    assert manifest.problems == []
    assert [r.manipulation for r in manifest.rows] == ["splice", None, "flicker"]
    assert manipulation_of(rows_for_file(manifest.rows, tmp_path / "b.mp4")) is None
    # Two rows naming different families for one file: neither is claimed.
    assert manipulation_of(rows_for_file(manifest.rows, tmp_path / "a.mp4")) == "mixed"
    # A manifest without the column (the FVC ones) parses as before.
    (tmp_path / "plain.csv").write_text("cascade_id,video_url,label,path\nc1,,fake,a.mp4\n")
    assert read_manifest(tmp_path / "plain.csv").rows[0].manipulation is None
