"""One run per video against batches: launches, event log and wall time per video, through the run queue.

``python -m benchmarks.batches [--videos 60] [--batch-size 50]``

The same demo corpus (tiny videos, so that what differs is the platform's own work) goes through
stages 1-4 twice, each time on a fresh sqlite instance and data root, with ``fvc run --skip-training``:

- **one run per video**: ``--batch-size 1`` (the path ``fvc run`` takes for trickles);
- **batches**: ``--batch-size N --batch-above 0``: one run per stage over up to N consecutive videos.

Per video: run launches (runs the instance holds / videos), event-log bytes (every event of every
run, serialised as the event log stores it; the same measure as ``benchmarks.scale``), and the wall
time of the whole ``fvc run``. The ratio column is the batch figure over the one-run-per-video figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._measure import REPO_ROOT, print_table

FVC = [sys.executable, "-m", "fvc_assets.cli"]
TINY = ("--scale", "0.25", "--max-frames", "12")

# Read inside the instance: runs, and event-log bytes by run and by kind of event.
_EVENT_LOG = """
import json, dagster as dg
from dagster_shared.serdes import serialize_value
inst = dg.DagsterInstance.get()
runs = inst.get_runs()
total, kinds = 0, {}
for run in runs:
    for entry in inst.all_logs(run.run_id):
        size = len(serialize_value(entry))
        kind = entry.dagster_event.event_type_value if entry.dagster_event else "log line"
        kinds[kind] = kinds.get(kind, 0) + size
        total += size
print(json.dumps({"runs": len(runs), "failed": sum(r.status == dg.DagsterRunStatus.FAILURE for r in runs),
                  "bytes": total, "kinds": kinds}))
"""


def one_pass(root: Path, inbox: Path, batch_args: list[str]) -> dict:
    home, data = root / "dagster_home", root / "data"
    home.mkdir(parents=True)
    data.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    shutil.copytree(inbox, data / "inbox")
    env = {**os.environ, "DAGSTER_HOME": str(home), "FVC_DATA_DIR": str(data), "FVC_INBOX_SETTLE_S": "0"}
    started = time.perf_counter()
    run = subprocess.run([*FVC, "run", "--skip-training", *batch_args], env=env, cwd=REPO_ROOT,
                         capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"fvc run {' '.join(batch_args)} failed:\n{run.stdout}\n{run.stderr}")
    out = subprocess.run([sys.executable, "-c", _EVENT_LOG], env=env, capture_output=True, text=True, check=True)
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fvc-batches-") as tmp:
        tmp = Path(tmp)
        inbox = tmp / "inbox"
        subprocess.run([*FVC, "demo-corpus", "--out", str(inbox), "--videos", str(args.videos), "--seed", "1",
                        *TINY], check=True, capture_output=True, cwd=REPO_ROOT)
        single = one_pass(tmp / "single", inbox, ["--batch-size", "1"])
        batched = one_pass(tmp / "batched", inbox, ["--batch-size", str(args.batch_size), "--batch-above", "0"])
    n = args.videos
    rows = []
    for label, key, scale in (("run launches per video", "runs", 1), ("event log per video (KB)", "bytes", 1e3),
                              ("wall time per video (s)", "seconds", 1)):
        a, b = single[key] / n / scale, batched[key] / n / scale
        rows.append([label, f"{a:.3f}", f"{b:.3f}", f"{b / a:.2f}x"])
    print(f"{n} tiny demo videos, stages 1-4 (fvc run --skip-training), this machine; "
          f"batches of up to {args.batch_size}")
    print_table(["per video", "one run each", "batches", "batches / one run each"], rows)
    kinds = sorted(set(single["kinds"]) | set(batched["kinds"]), key=lambda k: -batched["kinds"].get(k, 0))
    print("\nevent log per video by kind of event (KB)")
    print_table(["event", "one run each", "batches"],
                [[k, f"{single['kinds'].get(k, 0) / n / 1e3:.1f}", f"{batched['kinds'].get(k, 0) / n / 1e3:.1f}"]
                 for k in kinds])


if __name__ == "__main__":
    main()
