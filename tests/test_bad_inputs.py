"""The bad-input corpus (tests/bad_inputs.py) through `fvc run` (stages 0-4) in one go.

For every case the outcome is defined and asserted: processed by every stage, or its
own partition fails naming the file and the reason, or it is reported and not
ingested. Nothing else fails, no input changes, and nothing is written outside the
data root and the Dagster instance.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from fvc_assets.augment.assets import SOURCE_DECODED
from fvc_assets.augment.clips import CLIPS_PER_VIDEO
from fvc_assets.ingest.registration import load_registry
from tests.bad_inputs import LONG_TINY_FRAMES, build_corpus
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.timeout(1200)

STAGE_TABLES = ("clips.parquet", "handcrafted_features.parquet", "scaled.parquet", "scaled_features.parquet")


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root: (kind, size, mtime, content hash or link target), links not followed."""
    out = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_file():
            out[rel] = ("file", info.st_size, info.st_mtime_ns, info.st_mode,
                        hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            out[rel] = ("dir",)
    return out


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad_inputs")
    home, data, outside, cwd = base / "dagster_home", base / "data", base / "outside", base / "cwd"
    for folder in (home, cwd):
        folder.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    cases = build_corpus(data / "inbox", outside)
    before = snapshot(base)
    env = {**os.environ, "DAGSTER_HOME": str(home), "FVC_DATA_DIR": str(data)}
    done = subprocess.run(
        # One run per video (28 of them would go in batches): each input's own run is what this module
        # checks; a broken video inside a batch is tests/test_batch_runs.py's.
        [str(Path(sys.executable).parent / "fvc"), "run", "--skip-training", "--jobs", "2", "--batch-size", "1"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=1100,
    )
    print(done.stdout[-6000:], done.stderr[-3000:])
    return {"base": base, "home": home, "data": data, "cases": cases, "before": before,
            "after": snapshot(base), "stdout": done.stdout, "returncode": done.returncode}


def key_of(run, case) -> str:
    by_relpath = {r.relpath: r.key for r in load_registry(run["data"] / "registry").values()}
    return by_relpath[case.relpath]


def runs_by_partition(run) -> dict[str, list[dg.DagsterRun]]:
    os.environ["DAGSTER_HOME"] = str(run["home"])  # DagsterInstance.get() reads it
    with dg.DagsterInstance.get() as instance:
        out: dict[str, list] = {}
        for record in instance.get_run_records():
            out.setdefault(record.dagster_run.tags.get("dagster/partition"), []).append(record)
        checks = {}
        for key, records in out.items():
            for record in records:
                for entry in instance.all_logs(record.dagster_run.run_id):
                    event = entry.dagster_event
                    if event is not None and event.event_type_value == "ASSET_CHECK_EVALUATION":
                        data = event.asset_check_evaluation_data
                        checks.setdefault(key, {})[data.check_name] = data
    return out, checks


def test_the_corpus_covers_what_the_issue_names(corpus_run):
    names = {c.name for c in corpus_run["cases"]}
    for required in ("zero_bytes", "random_bytes", "truncated_mid_stream", "audio_only", "single_frame",
                     "odd_size", "10_bit", "yuv444", "rotation_flag", "variable_frame_rate", "interlaced",
                     "4k_two_frames", "mkv", "webm_vp9", "avi_mpeg4", "moov_at_end", "long_tiny",
                     "name_space", "name_unicode", "name_comma", "name_pipe", "name_quotes",
                     "name_leading_dash", "name_dotdot", "symlink_outside", "manifest_missing_file",
                     "manifest_duplicate_row", "manifest_extra_fields"):
        assert required in names


def test_each_video_ends_as_defined_and_only_its_own_partition_fails(corpus_run):
    cases, data, stdout = corpus_run["cases"], corpus_run["data"], corpus_run["stdout"]
    runs, checks = runs_by_partition(corpus_run)
    failures = dict(re.findall(r"^FAILED (\S+) \(.*?\): (.*)$", stdout, flags=re.M))
    videos = [c for c in cases if c.outcome in ("ok", "fails")]
    assert corpus_run["returncode"] == 1  # some inputs are bad: the run says so
    assert f"{len(videos)} video partition(s) run, {sum(c.outcome == 'fails' for c in videos)} failed" in stdout

    for case in videos:
        key = key_of(corpus_run, case)
        path = str(data / "inbox" / case.relpath)
        assert len(runs[key]) == 1, f"{case.name}: one run per partition"
        status = runs[key][0].dagster_run.status
        if case.outcome == "fails":
            assert status == dg.DagsterRunStatus.FAILURE, case.name
            assert path in failures[key] and case.reason in failures[key], (case.name, failures.get(key))
            assert not (data / "videos" / key / "clips").exists(), f"{case.name}: no clips from a failed input"
            continue
        assert status == dg.DagsterRunStatus.SUCCESS, (case.name, failures.get(key))
        for table in STAGE_TABLES:
            assert pl.read_parquet(data / "videos" / key / table).height == CLIPS_PER_VIDEO, (case.name, table)
        raw = pl.read_parquet(data / "videos" / key / "raw_video.parquet").row(0, named=True)
        assert raw["path"] == path
        errors = [n for n, c in checks[key].items() if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
        assert not errors, (case.name, errors)
        decoded = checks[key][SOURCE_DECODED]
        assert decoded.passed == (case.name != "truncated_mid_stream"), case.name


def test_awkward_sources_keep_their_shape(corpus_run):
    data = corpus_run["data"]
    by_name = {c.name: c for c in corpus_run["cases"]}

    def table(name, file):
        return pl.read_parquet(data / "videos" / key_of(corpus_run, by_name[name]) / file)

    def raw(name):
        return table(name, "raw_video.parquet").row(0, named=True)

    assert (raw("odd_size")["width"], raw("odd_size")["height"]) == (853, 481)
    assert raw("rotation_flag")["rotation"] == 90
    # Upright: a 96x64 source displayed rotated is scaled to portrait.
    assert table("rotation_flag", "scaled.parquet").select("scaled_width", "scaled_height").row(0) == (170, 256)
    assert raw("10_bit")["pix_fmt"] == "yuv420p10le" and raw("yuv444")["pix_fmt"] == "yuv444p"
    assert raw("hevc_10bit_444")["codec"] == "hevc"
    assert table("4k_two_frames", "clips.parquet")["frames"].to_list() == [2] * CLIPS_PER_VIDEO
    assert table("single_frame", "clips.parquet")["frames"].to_list() == [1] * CLIPS_PER_VIDEO
    assert table("long_tiny", "clips.parquet")["frames"].to_list() == [LONG_TINY_FRAMES] * CLIPS_PER_VIDEO
    truncated = table("truncated_mid_stream", "clips.parquet")["frames"]
    assert 0 < truncated.max() < raw("truncated_mid_stream")["frame_count"]
    # The manifest's good row labelled its file despite the bad rows around it.
    assert raw("mkv")["label"] == "real" and "c1" in raw("mkv")["cascade_ids"]
    # Every key is safe for Dagster (no , | or leading dot) and unique.
    keys = [key_of(corpus_run, c) for c in corpus_run["cases"] if c.outcome in ("ok", "fails")]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", k) and not k.startswith(".") for k in keys)


def test_rejected_files_and_manifest_problems_are_reported_with_file_and_reason(corpus_run):
    data, stdout = corpus_run["data"], corpus_run["stdout"]
    registered = {r.relpath for r in load_registry(data / "registry").values()}
    for case in corpus_run["cases"]:
        if case.outcome == "rejected":
            assert f"NOT INGESTED {data / 'inbox' / case.relpath}: {case.reason}" in stdout, case.name
            assert case.relpath not in registered
        elif case.outcome == "manifest":
            lines = [line for line in stdout.splitlines() if line.startswith(f"MANIFEST {data / 'inbox' / case.relpath}:")]
            assert lines and case.reason in lines[0], (case.name, lines)


def test_no_input_changes_and_nothing_is_written_outside_the_data_root(corpus_run):
    before, after = corpus_run["before"], corpus_run["after"]
    for path, state in before.items():
        assert after.get(path) == state, f"{path} changed"
    new = [p for p in after if p not in before]
    assert new, "the run wrote its outputs"
    outside = [p for p in new if not (p.startswith("data/") or p.startswith("dagster_home/"))
               or p.startswith("data/inbox/")]
    assert outside == []
    assert not any(Path(p).name == "PWNED" for p in new), "a file name reached a shell"
    assert not any(Path(p).name.startswith(".") and ".tmp-" in p for p in new), "no temp file left behind"
