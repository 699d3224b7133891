"""Stage 1 transforms and clip writing, on real encodes."""

import json

import numpy as np
import polars as pl
import pytest

from fvc_assets.augment.clips import CLIPS_PER_VIDEO, augment_video, encoders_at_once
from fvc_assets.augment.schema import ClipTable
from fvc_assets.augment.transforms import AUGMENTATIONS, build_transform, clip_seed
from fvc_assets.ingest.preview import fit_tile
from fvc_resources.video import VideoError, iter_chunks, probe
from tests.conftest import encode_video, ffmpeg, synthetic_frames

CHUNK = np.stack(list(synthetic_frames(6, 96, 64, seed=1)))


def test_parameters_are_seeded_by_video_index_and_global_seed():
    assert clip_seed("v", 3, 0) == clip_seed("v", 3, 0)
    assert len({clip_seed("v", 3, 0), clip_seed("w", 3, 0), clip_seed("v", 4, 0), clip_seed("v", 3, 1)}) == 4
    for idx in range(len(AUGMENTATIONS)):
        assert build_transform("v", idx, 0).params == build_transform("v", idx, 0).params
    drawn = [build_transform(f"video{i}", 0, 0).params["angle"] for i in range(50)]
    assert len(set(drawn)) == 50 and all(-10 <= a <= 10 for a in drawn)


@pytest.mark.parametrize("idx", range(len(AUGMENTATIONS)))
def test_each_augmentation_changes_frames_keeps_size_and_is_chunking_independent(idx):
    out = build_transform("v", idx, 7).apply(CHUNK)
    assert out.shape == CHUNK.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - CHUNK).mean() > 0.5
    again = build_transform("v", idx, 7)
    split = np.concatenate([again.apply(CHUNK[:2]), again.apply(CHUNK[2:])])
    np.testing.assert_array_equal(out, split)


def test_parameter_ranges_follow_the_spec():
    for i in range(30):
        p = {name: build_transform(f"v{i}", k, 0).params for k, name in enumerate(AUGMENTATIONS)}
        assert 0.8 <= p["brightness"]["factor"] <= 1.2
        assert 0.8 <= p["contrast"]["factor"] <= 1.2
        assert 0.8 <= p["saturation"]["factor"] <= 1.2
        assert 8 <= p["gaussian_noise"]["sigma"] <= 12
        assert 0.5 <= p["gaussian_blur"]["radius"] <= 2.0
        assert -0.1 <= p["affine"]["tx"] <= 0.1 and 0.9 <= p["affine"]["scale"] <= 1.1


def test_noise_has_the_drawn_sigma_on_every_channel():
    flat = np.full((4, 64, 64, 3), 128, np.uint8)
    t = build_transform("v", AUGMENTATIONS.index("gaussian_noise"), 0)
    std = (t.apply(flat).astype(float) - 128).std(axis=(0, 1, 2))
    assert np.allclose(std, t.params["sigma"], rtol=0.1)


def test_augment_video_writes_eleven_clips_with_lineage(tmp_path):
    source = encode_video(tmp_path / "src.mp4", frames=20, width=160, height=120, fps=20)
    rows = augment_video(source, tmp_path / "clips", video_id="src", label="fake", dup_group="cascade:f1",
                         fps=20.0, path_root=tmp_path)
    table = ClipTable.validate(pl.DataFrame(rows))
    assert table.height == CLIPS_PER_VIDEO
    assert table["augmentation_idx"].to_list() == list(range(-1, 10))
    assert set(table["video_id"]) == {"src"} and set(table["dup_group"]) == {"cascade:f1"}
    for row in rows:
        facts = probe(tmp_path / row["path"])
        assert (facts.width, facts.height, facts.frame_count) == (160, 120, 20)
        assert json.loads(row["params"]) == build_transform("src", row["augmentation_idx"], 0).params
    assert sorted(p.name for p in (tmp_path / "clips").iterdir()) == sorted(
        f"{name}.mp4" for name in ["original", *AUGMENTATIONS]
    ), "no temp files left behind"


def test_previews_are_each_clips_middle_frame_taken_while_writing(tmp_path):
    source = encode_video(tmp_path / "src.mp4", frames=21, width=320, height=180, fps=20)
    previews: dict = {}
    rows = augment_video(source, tmp_path / "clips", video_id="src", label="real", dup_group="g", fps=20.0,
                         path_root=tmp_path, previews=previews)
    assert sorted(previews) == list(range(-1, 10))
    for row in rows:
        preview = previews[row["augmentation_idx"]]
        assert preview.shape == (90, 160, 3) and preview.dtype == np.uint8
        # The written clip decoded again: its frame 10 of 21 is the nearest to the preview (the encoder's loss aside).
        decoded = list(iter_chunks(tmp_path / row["path"], 32))[0]
        gaps = [np.abs(fit_tile(frame).astype(int) - preview).mean() for frame in decoded]
        assert int(np.argmin(gaps)) == 10 and gaps[10] < 6, (row["augmentation"], gaps)
    flipped = previews[AUGMENTATIONS.index("horizontal_flip")]
    assert np.abs(flipped.astype(int) - previews[-1]).mean() > 10, "each clip's own frame, not the original's"


def test_frame_cap_rotation_and_odd_sizes(tmp_path):
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=170x98:rate=25", "-t", "1.2", "-vf", "scale=169:97",
           "-c:v", "libx264", "-pix_fmt", "yuv444p", str(tmp_path / "plain.mp4"))
    ffmpeg("-i", str(tmp_path / "plain.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(tmp_path / "rot.mp4"))
    rows = augment_video(tmp_path / "rot.mp4", tmp_path / "clips", video_id="rot", label="real", dup_group="g",
                         fps=25.0, max_frames=10, path_root=tmp_path)
    assert len(rows) == CLIPS_PER_VIDEO
    for row in rows:
        # Upright (97 wide, 169 tall), padded to even sizes for 4:2:0, capped at 10 frames.
        assert (row["width"], row["height"], row["frames"]) == (98, 170, 10)


def test_variable_frame_rate_source_still_gives_eleven_clips(tmp_path):
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=128x96:rate=30", "-t", "2",
           "-vf", "setpts='if(lt(N,20),N/(30*TB),(20/30+(N-20)/(10*TB)*TB)/TB)'", "-fps_mode", "vfr",
           "-c:v", "libx264", str(tmp_path / "vfr.mp4"))
    facts = probe(tmp_path / "vfr.mp4")
    rows = augment_video(tmp_path / "vfr.mp4", tmp_path / "clips", video_id="vfr", label="real", dup_group="g",
                         fps=facts.fps, path_root=tmp_path)
    assert len(rows) == CLIPS_PER_VIDEO and all(r["frames"] == rows[0]["frames"] > 0 for r in rows)


def test_a_source_that_decodes_only_partly_gives_eleven_shorter_clips(tmp_path):
    good = encode_video(tmp_path / "good.mkv", frames=60, width=160, height=120)
    broken = tmp_path / "broken.mkv"
    data = good.read_bytes()
    broken.write_bytes(data[: len(data) // 2] + np.random.default_rng(0).bytes(len(data) // 2))
    rows = augment_video(broken, tmp_path / "clips", video_id="b", label="real", dup_group="g", fps=25.0)
    frames = {r["frames"] for r in rows}
    assert len(rows) == CLIPS_PER_VIDEO and len(frames) == 1
    assert 0 < frames.pop() < 60  # the decodable prefix, the same in every clip


def test_a_source_with_no_decodable_frame_fails_naming_the_file(tmp_path):
    audio = tmp_path / "audio.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(audio))
    with pytest.raises(VideoError, match="no video stream") as info:
        augment_video(audio, tmp_path / "clips", video_id="a", label="real", dup_group="g", fps=25.0)
    assert str(audio) in str(info.value)
    assert not any((tmp_path / "clips").glob("*.mp4")), "no clip, and no temp file, is left behind"


def test_clips_are_byte_identical_across_runs_and_clips_at_once(tmp_path):
    """x264 with mbtree on gave different pixels run to run here; the clip writer turns it off, and
    pins x264 to one thread (its output depends on its thread count). Encoding the 11 clips all at
    once, 3 at a time, or one at a time gives the same bytes."""
    source = encode_video(tmp_path / "src.mp4", frames=40, width=192, height=108, fps=20, seed=4)
    digests = []
    for run, at_once in enumerate((11, 3, 1, 11)):
        rows = augment_video(source, tmp_path / f"run{run}", video_id="src", label="real", dup_group="g",
                             fps=20.0, at_once=at_once, path_root=tmp_path / f"run{run}")
        digests.append({r["clip_id"]: (tmp_path / f"run{run}" / r["path"]).read_bytes() for r in rows})
    assert len(digests[0]) == 11
    assert digests[0] == digests[1] == digests[2] == digests[3]


def test_the_memory_budget_and_the_cores_set_how_many_clips_run_at_once():
    assert encoders_at_once(1920, 1080, 600, cores=16) == 2  # about 280 MB per 1080p clip in flight
    assert encoders_at_once(1920, 1080, 100, cores=16) == 1  # never fewer than one
    assert encoders_at_once(320, 240, 10_000, cores=64) == CLIPS_PER_VIDEO  # never more than 11
    assert encoders_at_once(320, 240, 10_000, cores=2) == 2  # nor more than the cores
    at = [encoders_at_once(w, h, 600, cores=16) for w, h in ((854, 480), (1280, 720), (1920, 1080))]
    assert at[0] > at[1] > at[2]


def test_a_failing_clip_stops_the_video_and_leaves_no_clip(tmp_path, monkeypatch):
    """One clip's encoder failing in a later pass removes the clips earlier passes wrote: all 11 or none."""
    import fvc_assets.augment.clips as clips

    source = encode_video(tmp_path / "src.mp4", frames=20, width=96, height=64, fps=20)
    real = clips.build_transform

    def breaking(video_id, idx, seed=0):
        transform = real(video_id, idx, seed)
        if idx == 8:
            transform.apply = lambda chunk: (_ for _ in ()).throw(RuntimeError("elastic broke"))
        return transform

    monkeypatch.setattr(clips, "build_transform", breaking)
    with pytest.raises(RuntimeError, match="elastic broke"):
        augment_video(source, tmp_path / "clips", video_id="s", label="real", dup_group="g", fps=20.0, at_once=3)
    assert not list((tmp_path / "clips").glob("*")), "no clip and no temp file is left behind"
