"""The demo corpus: deterministic, varied, FVC-shaped, and with a real trace in fakes."""

import csv
from collections import Counter

import numpy as np

from fvc_assets.demo.corpus import SceneRenderer, plan_corpus, write_corpus
from fvc_assets.ingest.manifest import read_manifest, rows_for_file
from fvc_resources.video import probe


def test_plan_is_deterministic_and_varied():
    plan = plan_corpus(24, seed=0)
    assert plan == plan_corpus(24, seed=0)
    assert plan != plan_corpus(24, seed=1)
    assert len(plan) == 24
    assert Counter(v.label for v in plan if v.source is None) == {"fake": 8, "real": 8}
    sizes = {(v.width, v.height) for v in plan}
    assert (1920, 1080) in sizes and (426, 240) in sizes
    assert any(h > w for w, h in sizes) and any(h == w for w, h in sizes)  # 9:16 and 1:1
    assert min(v.fps for v in plan) >= 15 and max(v.fps for v in plan) <= 60
    assert min(v.duration for v in plan) >= 1.0 and max(v.duration for v in plan) >= 10.0
    assert {"libx264", "mpeg4", "libvpx-vp9"} <= {v.codec for v in plan}
    assert {".mp4", ".webm", ".avi", ".mkv"} <= {v.suffix for v in plan}
    by_name = {v.file_name: v for v in plan}
    dups = [v for v in plan if v.source]
    assert {v.derivation for v in dups} == {"reencode", "resize", "trim"}
    for dup in dups:
        assert dup.cascade_id == by_name[dup.source].cascade_id
        assert dup.label == by_name[dup.source].label


def test_metadata_is_drawn_independently_of_label():
    """Across many seeds, no metadata field separates the labels."""
    plans = [v for seed in range(30) for v in plan_corpus(24, seed) if v.source is None]
    for field in ("width", "fps", "duration", "bitrate"):
        fake = np.array([getattr(v, field) for v in plans if v.label == "fake"], float)
        real = np.array([getattr(v, field) for v in plans if v.label == "real"], float)
        pooled = np.concatenate([fake, real]).std()
        assert abs(fake.mean() - real.mean()) < 0.25 * pooled, field
    codecs = {lab: Counter(v.codec for v in plans if v.label == lab) for lab in ("fake", "real")}
    for codec in codecs["fake"]:
        share_fake = codecs["fake"][codec] / sum(codecs["fake"].values())
        share_real = codecs["real"][codec] / sum(codecs["real"].values())
        assert abs(share_fake - share_real) < 0.1, codec


def test_fake_frames_carry_a_resampling_trace():
    """Fakes lose high-frequency sensor noise inside the splice: a measurable forensic trace."""
    base = next(v for v in plan_corpus(8, seed=0) if v.source is None)
    residual = {}
    for label in ("fake", "real"):
        frame = SceneRenderer(base.__class__(**{**base.__dict__, "label": label})).frame(0).astype(np.float32)
        grey = frame.mean(-1)
        high = grey - (np.roll(grey, 1, 0) + np.roll(grey, -1, 0) + np.roll(grey, 1, 1) + np.roll(grey, -1, 1)) / 4
        h, w = grey.shape
        residual[label] = np.abs(high[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3]).mean()
    assert residual["fake"] < 0.8 * residual["real"]


def test_written_corpus_probes_and_matches_its_manifest(tmp_path):
    manifest_path = write_corpus(tmp_path, n_videos=5, seed=7)
    with open(manifest_path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["cascade_id", "video_url", "label", "path"]
    assert len(rows) == 5
    manifest = read_manifest(manifest_path)
    assert manifest.problems == []
    plan = {v.file_name: v for v in plan_corpus(5, seed=7)}
    for row in rows:
        facts = probe(tmp_path / row["path"])
        spec = plan[row["path"]]
        assert (facts.width, facts.height) == (spec.width, spec.height)
        assert facts.fps == spec.fps
        assert abs(facts.frame_count - spec.frames) <= 1
        # The platform id in the URL finds the file even without the path column.
        matched = rows_for_file([r for r in manifest.rows], tmp_path / row["path"])
        assert matched[0].platform_id == (tmp_path / row["path"]).stem
    # Writing again keeps what is there.
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p.suffix != ".csv"}
    write_corpus(tmp_path, n_videos=5, seed=7)
    assert mtimes == {p: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p.suffix != ".csv"}
