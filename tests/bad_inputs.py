"""A corpus of awkward and broken inputs, generated with the ffmpeg CLI (Debian's build).

Each case names its inbox file(s) and what the platform must do with it:
``ok`` (processed by every per-video stage), ``fails`` (its own partition fails
with an error naming the file and ``reason``), ``rejected`` (not ingested, reported
with the file and ``reason``), or ``manifest`` (a manifest problem reported with
the manifest's file:line and ``reason``).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The long case: long for a video, small for the suite.
LONG_TINY_FRAMES, LONG_TINY_FPS = 600, 2
# A moving test pattern with noise: encoders get real content, not flat frames.
_PATTERN = "testsrc2=size={w}x{h}:rate={fps}:duration={seconds},noise=alls=12:allf=t:all_seed={seed}"


@dataclass(frozen=True)
class Case:
    name: str  # a short id for the test report
    relpath: str  # the file's path under the inbox
    outcome: str  # ok | fails | rejected | manifest
    reason: str = ""  # a phrase the error (or report) must contain


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args], check=True)


def pattern(out: Path, *, w=96, h=64, fps=10, seconds=1.0, codec="libx264", pix_fmt="yuv420p",
            extra: tuple[str, ...] = (), vf: str | None = None, seed: int = 0) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    filters = ["-vf", vf] if vf else []
    ffmpeg("-f", "lavfi", "-i", _PATTERN.format(w=w, h=h, fps=fps, seconds=seconds, seed=seed), *filters,
           "-c:v", codec, "-pix_fmt", pix_fmt, *extra, str(out))
    return out


# File names a shell, a CSV or a Dagster partition key would trip over.
AWKWARD_NAMES = {
    "space": "with space in name.mp4",
    "unicode": "vidéo 视频 ünï.mp4",
    "comma": "comma,in,name.mp4",
    "pipe": "pipe|in|name.mp4",
    "quotes": "quote's \"double\".mp4",
    "leading_dash": "-leading-dash.mp4",
    "dotdot": "a..b...mp4",
    "shell": "$(touch PWNED);`id`&x>y.mp4",
}


def build_corpus(inbox: Path, outside: Path) -> list[Case]:
    """Write every case under ``inbox`` (and a symlink target under ``outside``); return the cases."""
    fake = inbox / "fake"
    real = inbox / "real"
    cases: list[Case] = []

    def add(case: Case) -> None:
        cases.append(case)

    (fake / "empty.mp4").parent.mkdir(parents=True, exist_ok=True)
    (fake / "empty.mp4").touch()
    add(Case("zero_bytes", "fake/empty.mp4", "fails", "empty file (0 bytes)"))

    (fake / "random.mp4").write_bytes(os.urandom(64_000))
    add(Case("random_bytes", "fake/random.mp4", "fails", "not a readable video container"))

    # ffmpeg writes the moov atom at the end by default: cut in half, the index is gone.
    whole = pattern(real / "whole_moov_end.mp4", seconds=2)
    add(Case("moov_at_end", "real/whole_moov_end.mp4", "ok"))
    (fake / "truncated.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    add(Case("truncated_moov_end", "fake/truncated.mp4", "fails", "moov atom not found"))
    # With the index up front (faststart) a cut file still opens, but half its frames are missing.
    front = pattern(inbox / "tmp_front.mp4", seconds=2, extra=("-movflags", "+faststart"))
    (fake / "truncated_faststart.mp4").write_bytes(front.read_bytes()[: front.stat().st_size // 2])
    front.unlink()
    add(Case("truncated_mid_stream", "fake/truncated_faststart.mp4", "ok"))

    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(fake / "audio_only.mp4"))
    add(Case("audio_only", "fake/audio_only.mp4", "fails", "no video stream"))

    pattern(fake / "single_frame.mp4", extra=("-frames:v", "1"))
    add(Case("single_frame", "fake/single_frame.mp4", "ok"))
    # testsrc2 rounds sizes to even; scale after it. 4:4:4 lets H.264 code odd sizes.
    pattern(real / "odd_853x481.mp4", w=852, h=480, seconds=0.5, vf="scale=853:481", pix_fmt="yuv444p")
    add(Case("odd_size", "real/odd_853x481.mp4", "ok"))
    pattern(real / "ten_bit.mp4", pix_fmt="yuv420p10le", extra=("-profile:v", "high10"))
    add(Case("10_bit", "real/ten_bit.mp4", "ok"))
    pattern(real / "yuv444.mp4", pix_fmt="yuv444p", extra=("-profile:v", "high444"))
    add(Case("yuv444", "real/yuv444.mp4", "ok"))
    pattern(real / "hevc_10bit_444.mkv", codec="libx265", pix_fmt="yuv444p10le", extra=("-x265-params", "log-level=error"))
    add(Case("hevc_10bit_444", "real/hevc_10bit_444.mkv", "ok"))
    # ffmpeg 5.1 writes a display matrix when a stream is copied with a rotate tag.
    plain = pattern(inbox / "tmp_plain.mp4", w=96, h=64)
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(fake / "rotated.mp4"))
    plain.unlink()
    add(Case("rotation_flag", "fake/rotated.mp4", "ok"))
    # Variable frame rate: drop frames irregularly and keep their timestamps.
    pattern(fake / "vfr.mp4", fps=30, seconds=2, vf="select='not(mod(n\\,3))+eq(mod(n\\,7)\\,1)',setpts=N/TB/30*PTS/PTS",
            extra=("-fps_mode", "vfr"))
    add(Case("variable_frame_rate", "fake/vfr.mp4", "ok"))
    pattern(real / "interlaced.mp4", w=96, h=64, vf="interlace", extra=("-flags", "+ilme+ildct", "-x264-params", "tff=1"))
    add(Case("interlaced", "real/interlaced.mp4", "ok"))
    pattern(real / "interlaced_mpeg2.mpg", w=96, h=64, codec="mpeg2video", vf="interlace",
            extra=("-flags", "+ilme+ildct", "-top", "1"))
    add(Case("interlaced_mpeg2_ps", "real/interlaced_mpeg2.mpg", "ok"))
    pattern(fake / "uhd_two_frames.mp4", w=3840, h=2160, extra=("-frames:v", "2", "-preset", "ultrafast"))
    add(Case("4k_two_frames", "fake/uhd_two_frames.mp4", "ok"))
    pattern(real / "container.mkv")
    add(Case("mkv", "real/container.mkv", "ok"))
    pattern(real / "container.webm", codec="libvpx-vp9", extra=("-deadline", "realtime", "-cpu-used", "8"))
    add(Case("webm_vp9", "real/container.webm", "ok"))
    pattern(real / "container.avi", codec="mpeg4")
    add(Case("avi_mpeg4", "real/container.avi", "ok"))
    # Long but tiny: 5 minutes of 32x24 (LONG_TINY_FRAMES; every stage reads them all, and stage 3 writes them
    # 11 times at 256 px: the corpus's slowest partition beside the 4K one).
    pattern(real / "long_tiny.mp4", w=32, h=24, fps=LONG_TINY_FPS, seconds=LONG_TINY_FRAMES // LONG_TINY_FPS,
            extra=("-preset", "ultrafast"))
    add(Case("long_tiny", "real/long_tiny.mp4", "ok"))

    for case, name in AWKWARD_NAMES.items():
        pattern(fake / name, seconds=0.5, seed=len(cases))
        add(Case(f"name_{case}", f"fake/{name}", "ok"))

    target = pattern(outside / "elsewhere.mp4", seconds=0.5)
    (fake / "link_outside.mp4").symlink_to(target)
    add(Case("symlink_outside", "fake/link_outside.mp4", "rejected", "symlink points outside the inbox"))
    (fake / ".hidden.mp4").write_bytes((fake / "single_frame.mp4").read_bytes())
    add(Case("hidden_file", "fake/.hidden.mp4", "rejected", "hidden file"))

    # A manifest: a row for a file that is not there, a duplicated row, a malformed row,
    # and a good row labelling one of the files above (by its path).
    manifest = inbox / "manifest.csv"
    manifest.write_text(
        "cascade_id,video_url,label,path\n"
        "c1,https://www.youtube.com/watch?v=aaaaaaaaaaa,real,real/container.mkv\n"
        "c2,https://www.youtube.com/watch?v=bbbbbbbbbbb,fake,real/not_here.mp4\n"
        "c1,https://www.youtube.com/watch?v=aaaaaaaaaaa,real,real/container.mkv\n"
        "c3,https://www.youtube.com/watch?v=ccccccccccc,fake,a,b,c\n"
        ",,fake,\n"
    )
    add(Case("manifest_missing_file", "manifest.csv:3", "manifest", "real/not_here.mp4"))
    add(Case("manifest_duplicate_row", "manifest.csv:4", "manifest", "duplicate of line 2"))
    add(Case("manifest_extra_fields", "manifest.csv:5", "manifest", "more fields than columns"))
    add(Case("manifest_empty_fields", "manifest.csv:6", "manifest", "needs cascade_id, label"))
    return cases
