"""File names, run tags and paths full of shell metacharacters are data, never shell code.

Each payload below would create a file named ``PWNED<n>`` in the
working directory of any shell that read it; the first test shows that they do.
The others put them through the platform for real:

- ingest: inbox files with such names are registered (``register_new_videos``,
  what the inbox sensor and ``fvc run`` call) and materialised through stage 1
  (``raw_videos``, ``augmented_videos``) in process;
- SLURM: one such video goes through stage 1 on the local SLURM cluster, with
  such strings in a run tag, in ``slurm/extra_args`` (``--comment=...``), in the
  executor's ``logs_dir`` (so in sbatch's ``--output``), in its job-name prefix
  and in an environment variable handed to the jobs.

Afterwards no ``PWNED*`` file exists in the working directory, the repository,
$HOME, the temp folder, /, the data roots, the instance, the SLURM state folder or
slurmd's working directory, and ``scontrol`` shows the strings verbatim where they
reach SLURM (the log path, the comment) and sanitised where a name must be safe
(the job name).
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

# `python -m pytest` puts the repo root on sys.path; `.venv/bin/pytest` alone does not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fvc_assets.augment.assets import augmented_videos  # noqa: E402
from fvc_assets.augment.clips import CLIPS_PER_VIDEO  # noqa: E402
from fvc_assets.ingest.assets import raw_videos  # noqa: E402
from fvc_core.keys import is_safe_key, sanitize_video_id  # noqa: E402
from fvc_assets.ingest.registration import load_registry, register_new_videos  # noqa: E402
from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME  # noqa: E402
from fvc_resources.slurm.sbatch import RUN_STEP_SCRIPT  # noqa: E402
from fvc_resources.storage import StorageResource  # noqa: E402
from fvc_resources.video_resource import VideoResource  # noqa: E402
from tests import slurm_jobs  # noqa: E402
from tests.conftest import encode_video  # noqa: E402
from tests.slurm_fixtures import REPO_ROOT  # noqa: E402

pytestmark = pytest.mark.timeout(420)

# Inbox file names. Those with a payload create PWNED<n> when a shell reads them.
NAMES = [
    "a;touch PWNED1;.mp4",
    "$(touch PWNED2).mp4",
    "`touch PWNED3`.mp4",
    "x|y&z>PWNED0 .mp4",
    "-rf --help.mp4",
    "q'uo'te\"s\" && touch PWNED4 #.mp4",
    "new\nline $(touch PWNED5).mp4",
    "~ $HOME *?[ab]{c,d} \\ spaces  ünïcödé 视频 (1).mp4",
]
# What the SLURM run carries: a run tag, a comment through slurm/extra_args, a folder for the
# step logs, a job-name prefix and an environment variable for the jobs.
SLURM_VIDEO = "$(touch PWNED6) a;b|c`touch PWNED7`.mp4"
TAG_VALUE = "$(touch PWNED8);`touch PWNED9`|x&y"
COMMENT = "$(touch PWNED10);`touch PWNED11`"
LOGS_FOLDER = "logs $(touch PWNED12);`touch PWNED13`|x&y"
JOB_PREFIX = "fvc;touch PWNED14"
ENV_VALUE = "$(touch PWNED15);`touch PWNED16`"
PAYLOADS = [*NAMES, SLURM_VIDEO, TAG_VALUE, COMMENT, LOGS_FOLDER, JOB_PREFIX, ENV_VALUE]


def traces(*trees: Path) -> list[Path]:
    """Payload traces in the places a shell run by the platform (or a SLURM job) would leave them:
    the shared folders themselves, and the test's own folders all through."""
    shallow = {Path.cwd(), REPO_ROOT, Path.home(), Path(tempfile.gettempdir()), Path("/")}
    found = [p for folder in shallow for p in folder.glob("PWNED*")]
    found += [p for tree in trees for p in tree.rglob("PWNED*")]
    return sorted(set(found))


def test_the_payloads_are_live_a_shell_given_them_leaves_its_traces(tmp_path):
    """The control: each string, pasted into a shell line, runs its command."""
    for payload in PAYLOADS:
        subprocess.run(["bash", "-c", f"echo {payload} >/dev/null"], cwd=tmp_path, capture_output=True, timeout=30)
    left = {p.name for p in tmp_path.iterdir()}
    assert {f"PWNED{n}" for n in range(17)} <= left, sorted(left)
    assert not traces(), "a payload left a trace outside its own folder"


def test_ingest_registers_and_materialises_files_named_with_shell_metacharacters(tmp_path):
    before = traces()
    data = tmp_path / "data"
    inbox = data / "inbox"
    (inbox / "fake").mkdir(parents=True)
    for seed, name in enumerate(NAMES):
        encode_video(inbox / "fake" / name, frames=12, width=96, height=64, seed=seed)

    registered, rejected = register_new_videos(inbox, data / "registry")
    assert rejected == []
    by_name = {Path(r.path).name: r for r in registered}
    assert sorted(by_name) == sorted(NAMES)
    keys = [r.key for r in registered]
    assert len(set(keys)) == len(keys)
    for name, registration in by_name.items():
        assert registration.path == str(inbox / "fake" / name)  # verbatim
        assert registration.relpath == f"fake/{name}"
        assert is_safe_key(registration.key), registration.key
        assert registration.key == sanitize_video_id(Path(name).stem)  # distinct stems: no hash suffix
    assert by_name["-rf --help.mp4"].key == "-rf_--help"
    assert by_name["$(touch PWNED2).mp4"].key == "touch_PWNED2"
    assert load_registry(data / "registry") == {r.key: r for r in registered}
    records = sorted(p.name for p in (data / "registry").iterdir() if not p.name.startswith("."))  # not the index
    assert records == sorted(f"{k}.json" for k in keys)

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, keys)
    resources = {"storage": StorageResource(data_dir=str(data)), "video": VideoResource()}
    for name, registration in by_name.items():
        key = registration.key
        result = dg.materialize([raw_videos, augmented_videos], instance=instance, resources=resources,
                                partition_key=key)
        assert result.success, name
        raw = pl.read_parquet(data / "videos" / key / "raw_video.parquet")
        assert raw["video_id"].to_list() == [key]
        assert raw["path"].to_list() == [registration.path]
        assert raw["label"].to_list() == ["fake"]
        assert raw["frame_count"].to_list() == [12]
        clips = pl.read_parquet(data / "videos" / key / "clips.parquet")
        assert clips.height == CLIPS_PER_VIDEO and set(clips["label"]) == {"fake"}
        metadata = result.asset_materializations_for_node("raw_videos")[0].metadata
        assert metadata["path"].value == registration.path

    # Every folder the platform made is named by a key; the inbox is as it was.
    assert sorted(p.name for p in (data / "videos").iterdir()) == sorted(keys)
    assert sorted(p.name for p in (inbox / "fake").iterdir()) == sorted(NAMES)
    assert traces(tmp_path) == before == []


def slurm_jobs_of(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict]:
    """step key -> the SLURM job its step-starting event names (id, name, log)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_WORKER_STARTING).records
    jobs = {}
    for record in records:
        metadata = record.event_log_entry.dagster_event.event_specific_data.metadata
        jobs[record.event_log_entry.step_key] = {
            "id": metadata["slurm_job_id"].value, "name": metadata["slurm_job_name"].value,
            "log": Path(metadata["slurm_log"].value),
        }
    return jobs


def run_messages(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(run_id).records
    return "\n".join(r.event_log_entry.dagster_event.message or "" for r in records if r.event_log_entry.dagster_event)


def slurmd_cwd(cluster) -> list[Path]:
    pid_file = cluster.state_dir / "pids" / "slurmd.pid"
    try:
        return [Path(os.readlink(f"/proc/{pid_file.read_text().strip()}/cwd"))]
    except OSError:
        return []


def test_a_slurm_run_carries_metacharacters_in_names_tags_and_paths_as_data(slurm_env, slurm_cluster):
    before = traces()
    inbox = slurm_env.data / "inbox"
    encode_video(inbox / "fake" / SLURM_VIDEO, frames=12, width=96, height=64, seed=7)
    (registration,), rejected = register_new_videos(inbox, slurm_env.data / "registry")
    assert rejected == [] and registration.path == str(inbox / "fake" / SLURM_VIDEO)
    key = registration.key
    assert is_safe_key(key)

    logs = slurm_env.home.parent / LOGS_FOLDER
    run_config = {"execution": {"config": {"slurm": {
        "check_step_health_interval_seconds": 1, "end_wait_seconds": 15,
        "logs_dir": str(logs), "job_name_prefix": JOB_PREFIX, "env_vars": [f"FVC_SHELL_TEST={ENV_VALUE}"],
    }}}}
    tags = {"dagster/partition": key, "fvc/note": TAG_VALUE, "slurm/extra_args": f"--comment='{COMMENT}'"}
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, [key])
        result = slurm_jobs.execute("stage1", run_config, tags, instance)
        assert result.success, run_messages(instance, result.run_id)
        assert instance.get_run_by_id(result.run_id).tags["fvc/note"] == TAG_VALUE
        jobs = slurm_jobs_of(instance, result.run_id)

    assert set(jobs) == {"raw_videos", "augmented_videos"}
    for step_key, job in jobs.items():
        slurm_cluster.final_state(job["id"])
        shown = subprocess.run(["scontrol", "show", "job", "-o", job["id"]], capture_output=True, text=True,
                               check=True).stdout
        # Where a name must be safe it is sanitised; where a string is data it arrives verbatim.
        assert job["name"] == f"fvc_touch_PWNED14-{result.run_id[:8]}-{step_key}"
        assert f"JobName={job['name']} " in shown
        assert job["log"] == logs / result.run_id / f"{step_key}.log"
        assert f"StdOut={job['log']}" in shown
        assert f"Comment={COMMENT}" in shown
        assert f"Command={RUN_STEP_SCRIPT}" in shown
        assert "JobState=COMPLETED " in shown
        # The fixed batch script wrote its first line to the path with the metacharacters. (The
        # step's own last lines may be missing: Dagster's log mirror stops on a 1 s poll.)
        assert job["log"].read_text().startswith(f"fvc-slurm: job {job['id']} on ")

    video_dir = slurm_env.data / "videos" / key
    raw = pl.read_parquet(video_dir / "raw_video.parquet")
    assert raw["path"].to_list() == [registration.path]
    assert pl.read_parquet(video_dir / "clips.parquet").height == CLIPS_PER_VIDEO
    left = traces(slurm_env.home.parent, slurm_cluster.state_dir, *slurmd_cwd(slurm_cluster))
    assert left == before == []
