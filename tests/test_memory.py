"""Sampling 8 frames holds one frame at a time: peak memory does not grow with video length."""

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, ffmpeg

RSS_BOUND_MB = 300  # Python + PyAV + numpy start near 80 MB; a 1080p RGB frame is 6 MB
GROWTH_BOUND_MB = 30


def peak_rss_mb(path, n: int) -> tuple[float, int]:
    # VmHWM, not ru_maxrss: ru_maxrss of an exec'd child starts at its (large) parent's size.
    code = (
        "from benchmarks._measure import peak_mb\n"
        "from fvc_resources.video import sample_frames\n"
        f"count = sum(1 for _ in sample_frames({str(path)!r}, {n}))\n"
        "print(count, peak_mb())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    count, peak = out.stdout.split()
    return float(peak), int(count)


@pytest.fixture(scope="module")
def long_and_short_1080p(tmp_path_factory):
    folder = tmp_path_factory.mktemp("long")
    paths = {}
    for seconds in (8, 64):
        paths[seconds] = folder / f"{seconds}s.mp4"
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30", "-t", str(seconds), "-c:v", "libx264",
               "-preset", "ultrafast", "-g", "250", "-pix_fmt", "yuv420p", str(paths[seconds]))
    return paths


def test_sampling_memory_is_bounded_and_independent_of_length(long_and_short_1080p):
    short_peak, short_count = peak_rss_mb(long_and_short_1080p[8], 8)
    long_peak, long_count = peak_rss_mb(long_and_short_1080p[64], 8)
    assert short_count == long_count == 8
    assert long_peak < RSS_BOUND_MB, f"peak {long_peak:.0f} MB for a 64 s 1080p video"
    assert long_peak - short_peak < GROWTH_BOUND_MB, f"{short_peak:.0f} MB (8 s) vs {long_peak:.0f} MB (64 s)"
