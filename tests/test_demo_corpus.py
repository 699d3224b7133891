"""The demo corpus: deterministic, varied, FVC-shaped, and with a real trace in fakes."""

import csv
from collections import Counter

import numpy as np

from dataclasses import replace

import cv2
import polars as pl
import pytest

from fvc_assets.demo.corpus import (
    FAMILIES, MIN_SHRUNK_FRAMES, SceneRenderer, check_families, plan_corpus, shrink, write_corpus,
)
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


def test_fewer_near_duplicates_keep_the_same_sources_and_a_bad_count_is_refused():
    default = plan_corpus(14, seed=0)
    assert sum(v.source is not None for v in default) == 14 // 3
    fewer = plan_corpus(12, seed=0, duplicates=2)
    assert fewer == default[:12] and sum(v.source is not None for v in fewer) == 2
    assert all(v.source is None for v in plan_corpus(10, seed=0, duplicates=0))
    for bad in (-1, 9):
        with pytest.raises(ValueError, match="near-duplicates must be between 0 and 8 for 10 videos"):
            plan_corpus(10, seed=0, duplicates=bad)


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
    assert list(rows[0]) == ["cascade_id", "video_url", "label", "manipulation", "path"]
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


def test_a_shrunk_corpus_keeps_every_choice_but_size_and_length(tmp_path):
    plan = plan_corpus(14, seed=0)
    small = shrink(plan, 0.25, 12)
    by_name = {v.file_name: v for v in small}
    same = ("file_name", "cascade_id", "label", "codec", "suffix", "fps", "seed", "source", "derivation",
            "manipulation")
    for big, little in zip(plan, small, strict=True):
        assert [getattr(little, f) for f in same] == [getattr(big, f) for f in same]
        assert little.width % 2 == 0 and little.height % 2 == 0
        assert little.width == max(32, round(big.width / 8) * 2) and little.height == max(32, round(big.height / 8) * 2)
        assert little.frames <= min(12, big.frames) + 1
        if little.source is None:
            assert little.frames == min(12, big.frames)
        else:  # a near-duplicate: never longer than its source, never under what the frame models sample
            source = by_name[little.source]
            assert min(MIN_SHRUNK_FRAMES, source.frames) <= little.frames <= source.frames
    assert any(v.derivation == "trim" and v.frames < by_name[v.source].frames for v in small)
    assert shrink(plan) == plan
    for scale, frames in ((0, None), (1.5, None), (0.5, MIN_SHRUNK_FRAMES - 1)):
        with pytest.raises(ValueError):
            shrink(plan, scale, frames)
    # Written, each file is what its shrunk spec says.
    write_corpus(tmp_path, n_videos=5, seed=7, scale=0.25, max_frames=12)
    for spec in shrink(plan_corpus(5, seed=7), 0.25, 12):
        facts = probe(tmp_path / spec.file_name)
        assert (facts.width, facts.height) == (spec.width, spec.height)
        assert abs(facts.frame_count - spec.frames) <= 1


def test_fakes_cycle_through_the_families_and_duplicates_keep_their_source_family():
    plan = plan_corpus(48, seed=0)
    by_name = {v.file_name: v for v in plan}
    sources = [v for v in plan if v.source is None]
    assert {v.manipulation for v in sources if v.label == "fake"} == set(FAMILIES)
    counts = Counter(v.manipulation for v in sources if v.label == "fake")
    assert max(counts.values()) - min(counts.values()) <= 1
    assert all(v.manipulation is None for v in plan if v.label == "real")
    for dup in (v for v in plan if v.source):
        assert dup.manipulation == by_name[dup.source].manipulation
    # Families are drawn apart from everything else: one family changes no size, codec, group or label.
    only_splice = plan_corpus(48, seed=0, families=("splice",))
    assert [replace(v, manipulation=None) for v in only_splice] == [replace(v, manipulation=None) for v in plan]
    assert {v.manipulation for v in only_splice if v.label == "fake"} == {"splice"}
    with pytest.raises(ValueError, match="unknown manipulation family nope"):
        check_families(["splice", "nope"])


def _frames(video, n=4):
    renderer = SceneRenderer(video)
    return [renderer.frame(i).astype(np.float32) for i in range(n)], renderer


def _box(renderer, i):
    return renderer._region(i / renderer.video.fps, renderer.region_axes)


def _pair(family):
    base = next(v for v in plan_corpus(8, seed=0) if v.source is None and v.width >= 640)
    real = replace(base, label="real", manipulation=None)
    fake = replace(base, label="fake", manipulation=family)
    return _frames(real), _frames(fake)


def test_splice_region_differs_in_colour_and_sharpness_at_64_pixels():
    (real, _), (fake, renderer) = _pair("splice")
    y0, y1, x0, x1 = _box(renderer, 0)
    inner = (slice(y0 + (y1 - y0) // 4, y1 - (y1 - y0) // 4), slice(x0 + (x1 - x0) // 4, x1 - (x1 - x0) // 4))

    def at64(frame):
        h, w = frame.shape[:2]
        return cv2.resize(frame, (64, max(1, round(64 * h / w))), interpolation=cv2.INTER_AREA)

    def sharpness(img):
        return float(np.abs(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean())

    scale = 64 / real[0].shape[1]
    small = (slice(int(inner[0].start * scale), int(inner[0].stop * scale)),
             slice(int(inner[1].start * scale), int(inner[1].stop * scale)))
    assert sharpness(at64(fake[0])[small]) < 0.6 * sharpness(at64(real[0])[small])
    assert np.abs(fake[0][inner].mean(axis=(0, 1)) - real[0][inner].mean(axis=(0, 1))).max() > 10


def test_flicker_shows_between_frames_not_outside_the_region():
    (real, _), (fake, renderer) = _pair("flicker")
    y0, y1, x0, x1 = _box(renderer, 0)
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    centre = (slice(cy - 8, cy + 8), slice(cx - 8, cx + 8))
    ratios = [fake[i][centre].mean() / real[i][centre].mean() for i in range(4)]
    assert max(ratios) - min(ratios) > 0.2 or all(abs(r - 1) > 0.1 for r in ratios)
    assert np.abs(fake[0][:8, :8] - real[0][:8, :8]).max() == 0  # the corner is untouched


def test_upsample_leaves_a_two_pixel_checkerboard():
    (real, _), (fake, renderer) = _pair("upsample")
    y0, y1, x0, x1 = _box(renderer, 0)
    pattern = np.where(np.add.outer(np.arange(y1 - y0), np.arange(x1 - x0)) % 2 == 0, 1.0, -1.0)

    def checker(frame):
        grey = frame[y0:y1, x0:x1].mean(-1)
        return abs(float((grey * pattern).mean()))

    assert checker(fake[0]) > 3 * checker(real[0]) + 1


def test_a_metadata_only_model_stays_below_070():
    """Codec, container, size, fps, duration and bitrate say nothing of the label (grouped CV, 5 seeds)."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, cross_val_predict

    aucs = []
    for seed in range(5):
        plan = plan_corpus(48, seed)
        table = pl.DataFrame([{"width": v.width, "height": v.height, "fps": v.fps, "duration": v.duration,
                               "bitrate": v.bitrate, "codec": ["libx264", "mpeg4", "libvpx-vp9"].index(v.codec),
                               "container": [".mp4", ".avi", ".webm", ".mkv"].index(v.suffix)} for v in plan])
        y = np.array([v.label == "fake" for v in plan], int)
        groups = [v.cascade_id for v in plan]
        scores = cross_val_predict(GradientBoostingClassifier(random_state=0), table.to_numpy(), y, groups=groups,
                                   cv=GroupKFold(5), method="predict_proba")[:, 1]
        aucs.append(roc_auc_score(y, scores))
    assert np.mean(aucs) < 0.70, aucs
