"""Plain ``dagster`` commands from the project folder use the project's instance and data root.

A temporary folder stands in for the repo root (its pyproject.toml, workspace.yaml and
dagster_home/dagster.yaml), prepared by the script ``make venv`` runs; the commands run
with no DAGSTER_HOME or FVC_DATA_DIR in the environment and no flag naming the code.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from fvc_assets.launch.inbox import register_inbox
from fvc_resources.storage import StorageResource
from tests.conftest import REPO_ROOT, encode_video

VENV_BIN = Path(sys.executable).parent


def shell(root: Path, command: str) -> subprocess.CompletedProcess:
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": f"{VENV_BIN}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(["bash", "-c", f"source .venv/bin/activate && {command}"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_dagster_commands_from_the_project_folder(tmp_path, monkeypatch):
    root = tmp_path / "project"
    (root / "dagster_home").mkdir(parents=True)
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "activate").write_text("true\n")
    for name in ("pyproject.toml", "workspace.yaml", "dagster_home/dagster.yaml"):
        shutil.copyfile(REPO_ROOT / name, root / name)
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "dagster-cli-env.sh"), str(root)], check=True)
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "dagster-cli-env.sh"), str(root)], check=True)  # idempotent
    assert (root / ".venv" / "bin" / "activate").read_text().count("DAGSTER_CLI_ASSET_LIST_MODULE_NAME=") == 1

    listed = shell(root, "dagster asset list")
    assert listed.returncode == 0, listed.stderr
    assert {"raw_videos", "augmented_videos", "model_comparison"} <= set(listed.stdout.split())

    home, data = root / "dagster_home", root / "data"
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # for this test's own look at the instance
    encode_video(data / "inbox" / "-dash clip.mp4", frames=12)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        scan = register_inbox(instance, StorageResource(data_dir=str(data), inbox_settle_seconds=0))
    (key,) = [r.key for r in scan.new]
    assert key == "-dash_clip" and not scan.rejected

    made = shell(root, f"dagster asset materialize --select raw_videos,augmented_videos --partition={key}")
    assert made.returncode == 0, made.stdout + made.stderr
    assert len(list((data / "videos" / key / "clips").glob("*.mp4"))) == 11

    launched = shell(root, "dagster job launch -j video_pipeline --tags " + json.dumps(json.dumps(
        {"dagster/partition": key})))
    assert launched.returncode == 0, launched.stdout + launched.stderr
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        assert instance.get_latest_materialization_event(dg.AssetKey("augmented_videos")) is not None
        queued = instance.get_runs(dg.RunsFilter(job_name="video_pipeline"))
        # Submitted to the project's run queue (the daemon would launch it), for that partition.
        assert [(r.status, r.tags.get("dagster/partition")) for r in queued] == [
            (dg.DagsterRunStatus.QUEUED, key)]
