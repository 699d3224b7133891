"""The video I/O layer against real encodes (PyAV encoders and the ffmpeg CLI)."""


import av
import numpy as np
import pytest

from fvc_resources.video import VideoError, iter_chunks, probe, sample_frames, write_clip
from tests.conftest import encode_video, ffmpeg, synthetic_frames


@pytest.mark.parametrize(
    "name, codec, expected_codec, container",
    [
        ("a.mp4", "libx264", "h264", "mp4"),
        ("b.webm", "libvpx-vp9", "vp9", "webm"),
        ("c.avi", "mpeg4", "mpeg4", "avi"),
        ("d.mkv", "libx264", "h264", "matroska"),
    ],
)
def test_probe_known_encodes(tmp_path, name, codec, expected_codec, container):
    path = encode_video(tmp_path / name, frames=50, width=320, height=180, fps=25, codec=codec, options={})
    facts = probe(path)
    assert facts.codec == expected_codec
    assert container in facts.container
    assert (facts.width, facts.height) == (320, 180)
    assert facts.fps == pytest.approx(25.0)
    assert facts.frame_count == 50
    assert facts.duration == pytest.approx(2.0, abs=0.05)
    assert facts.bitrate > 0
    assert facts.rotation == 0
    assert facts.has_audio is False
    assert facts.size_bytes == path.stat().st_size


def test_probe_reads_rotation_audio_and_odd_sizes(tmp_path):
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=854x482:rate=30", "-f", "lavfi", "-i", "sine=duration=1",
           "-t", "1", "-vf", "scale=853:481", "-c:v", "libx264", "-pix_fmt", "yuv444p", "-c:a", "aac",
           str(tmp_path / "plain.mp4"))
    # ffmpeg 5.1 writes the display matrix when the stream is copied with a rotate tag.
    ffmpeg("-i", str(tmp_path / "plain.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(tmp_path / "rot.mp4"))
    facts = probe(tmp_path / "rot.mp4")
    assert facts.rotation == 90
    assert facts.has_audio
    assert (facts.width, facts.height) == (853, 481)
    assert facts.pix_fmt == "yuv444p"
    assert facts.frame_count == 30


@pytest.mark.parametrize("gop", [12, 250])
def test_sampled_frames_equal_the_frames_a_full_decode_gives(tmp_path, gop):
    path = tmp_path / "v.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "6", "-c:v", "libx264",
           "-g", str(gop), "-bf", "2", "-pix_fmt", "yuv420p", str(path))
    with av.open(str(path)) as container:
        full = {round(float(f.time), 4): f.to_ndarray(format="rgb24") for f in container.decode(video=0)}
    samples = list(sample_frames(path, 8))
    assert len(samples) == 8
    times = [s.time for s in samples]
    assert times == sorted(times)
    for s in samples:
        assert abs(s.time - s.target_time) <= 1 / 30 + 1e-6
        np.testing.assert_array_equal(s.image, full[round(s.time, 4)])


def test_sampling_more_frames_than_exist_returns_each_frame_at_most_once_per_slot(tmp_path):
    path = encode_video(tmp_path / "short.mp4", frames=5, fps=25)
    samples = list(sample_frames(path, 32))
    assert len(samples) == 5
    assert len({s.time for s in samples}) == 5


def test_sample_frames_resizes_without_rgb_round_trip(tmp_path):
    path = encode_video(tmp_path / "v.mp4", frames=10, width=320, height=240)
    (s,) = list(sample_frames(path, 1, width=160, height=120))
    assert s.image.shape == (120, 160, 3)


def test_iter_chunks_streams_every_frame(tmp_path):
    path = encode_video(tmp_path / "v.mp4", frames=70, width=64, height=48)
    chunks = list(iter_chunks(path, 32))
    assert [c.shape[0] for c in chunks] == [32, 32, 6]
    assert chunks[0].shape[1:] == (48, 64, 3) and chunks[0].dtype == np.uint8
    assert sum(c.shape[0] for c in iter_chunks(path, 32, max_frames=40)) == 40


def test_write_clip_round_trip_and_even_padding(tmp_path):
    frames = list(synthetic_frames(12, 63, 47))
    out = write_clip(tmp_path / "clip.mp4", iter(frames), 24.0)
    assert (out.frames, out.width, out.height) == (12, 64, 48)
    decoded = np.concatenate(list(iter_chunks(tmp_path / "clip.mp4")))
    assert decoded.shape == (12, 48, 64, 3)
    # Lossy but close: crf 18 on smooth content.
    assert np.abs(decoded[:, :47, :63].astype(int) - np.stack(frames).astype(int)).mean() < 6
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_write_clip_failure_leaves_no_file(tmp_path):
    target = tmp_path / "clip.mp4"

    def broken():
        yield next(synthetic_frames(1, 64, 48))
        raise RuntimeError("decoder died")

    with pytest.raises(RuntimeError):
        write_clip(target, broken(), 25)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="no frames"):
        write_clip(target, iter([]), 25)
    assert list(tmp_path.iterdir()) == []


def test_bad_files_give_errors_that_name_file_and_reason(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(50_000))
    good = encode_video(tmp_path / "good.mp4", frames=60)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    audio = tmp_path / "audio.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(audio))
    cases = {
        empty: "empty file",
        junk: "not a readable video container",
        truncated: "moov atom not found",
        audio: "no video stream (streams found: audio)",
        tmp_path / "missing.mp4": "file not found",
    }
    for path, reason in cases.items():
        with pytest.raises(VideoError) as info:
            probe(path)
        assert str(path) in str(info.value)
        assert reason in str(info.value)


def test_sampling_an_mpeg_program_stream_whose_seeks_land_past_the_data(tmp_path):
    from tests.bad_inputs import pattern

    # MPEG-PS has no index: FFmpeg seeks by byte estimates, and here every seek finds nothing.
    path = pattern(tmp_path / "interlaced.mpg", w=96, h=64, codec="mpeg2video", vf="interlace",
                   extra=("-flags", "+ilme+ildct", "-top", "1"))
    container = av.open(str(path))
    stream = container.streams.video[0]
    container.seek(int(1.0 / float(stream.time_base)), stream=stream, backward=True, any_frame=False)
    assert not list(container.decode(stream))  # the trap this test is about
    container.close()
    frames = list(sample_frames(path, 5, fmt="gray"))
    assert len(frames) == 5
    assert [f.time for f in frames] == sorted(f.time for f in frames)
    assert all(f.time <= f.target_time for f in frames)


def test_prefetched_keeps_order_raises_the_producers_error_and_stops_when_abandoned():
    import threading

    from fvc_resources.video import prefetched

    assert list(prefetched(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield 1
        raise VideoError("clip.mp4", "decoding failed after 1 frames")

    with pytest.raises(VideoError, match="clip.mp4"):
        list(prefetched(failing()))
    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    stream = prefetched(endless(), depth=2)
    assert next(stream) == 0
    stream.close()  # the consumer stops early: the producer thread ends and closes its source
    assert closed.wait(5)


def test_letterbox_hands_decoded_frames_to_the_encoder_and_keeps_time(tmp_path):
    from fvc_assets.scale.letterbox import scale_clip
    from fvc_resources.video import ClipWriter, OpenedVideo

    source = encode_video(tmp_path / "src.mp4", frames=30, width=320, height=180, fps=15)
    facts = scale_clip(source, tmp_path / "out.mp4", 64)
    out = probe(tmp_path / "out.mp4")
    assert (out.width, out.height, out.frame_count, out.fps) == (64, 36, 30, 15.0)
    assert facts["frames"] == 30 and facts["is_downscaled"]
    with OpenedVideo(source) as video, ClipWriter(tmp_path / "bad.mp4", 15.0) as writer:
        rgb = next(video.frames()).reformat(format="rgb24")
        with pytest.raises(ValueError, match="yuv420p"):
            writer.write_frame(rgb)
