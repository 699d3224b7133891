"""The platform's own costs as the corpus grows: 100, 1,000 and 5,199 videos, with no video compute.

``python -m benchmarks.scale [--sizes 100,1000,5199] [--arrivals 100] [--resolver-up-to 5199]``

One real video is first run through stages 1-4 (a tiny 128x96 clip, in process, on a
sqlite instance): its per-video tables and its run's events are the template. Then, for
each size N, in a fresh process, data root and instance:

- the inbox holds the real FVC manifests (``../shared/fvc-corpus``; the same at every N)
  and N small files named by the manifests' platform ids (what the inbox sensor hashes
  and registers; no decoding is involved in what is measured here);
- **inbox sensor**: the real sensor function on the real instance, a tick with nothing
  new (median of 3), then a tick with ``--arrivals`` new files;
- **raw_videos bookkeeping**: what ``raw_videos`` does per video besides probing and
  sampling the file (its registry record, the manifests, label and dup_group);
- **catalog and folds**: every video gets the template's five per-video tables (rewritten
  to its key), then ``video_catalog`` and ``folds`` are materialised; then the arrivals'
  tables land and both run again (``folds`` then places only the new groups);
- **event log**: the template run's materialisations and check results are reported
  for every partition (runless events, same metadata); bytes per video are the template
  run's event-log bytes; the instance's size on disk after N partitions;
- **automation tick**: ``stage5_automation``'s conditions evaluated over that instance
  (Dagster's ``evaluate_automation_conditions``), a tick after the first (nothing new);
- **GraphQL**: a workspace from ``workspace.yaml`` (its own code server, as the webserver
  runs it): the asset page's query of ``handcrafted_features`` (partition keys, statuses,
  its checks' partition statuses, which stay empty here: Dagster indexes a check's result per
  partition only from runs, not from runless reports), ``fvc run``'s planning (the stale status of each asset of each
  partition, as ``fvc_assets.launch.plan`` asks it), and launching a backfill of every partition.

Growth is the value at the largest size over the value at the smallest; "per video" rows
divide by N first, so 1.0 means linear in the corpus and no hidden cost per video.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._measure import REPO_ROOT, print_table

CORPUS_DIR = REPO_ROOT.parent / "shared" / "fvc-corpus"
MANIFESTS = ("FVC.csv", "FVC_dup.csv")
PER_VIDEO_ASSETS = ("raw_videos", "augmented_videos", "handcrafted_features", "scaled_videos", "scaled_features")
FILE_BYTES = 4096  # each inbox file: enough bytes to hash, distinct per file
INPUT_EVENT_POINTER = "dagster/input_event_pointer/"  # Dagster's lineage tag: input asset -> its event's storage id


def fresh_env(root: Path) -> dict[str, str]:
    home, data = root / "dagster_home", root / "data"
    home.mkdir(parents=True)
    (data / "inbox").mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return {"DAGSTER_HOME": str(home), "FVC_DATA_DIR": str(data), "FVC_INBOX_SETTLE_S": "0",
            "FVC_EXECUTOR": "in_process"}


# --- the template: one tiny real video through stages 1-4 ------------------------------------------------

def build_template(root: Path) -> None:
    """Runs in its own process (env set by the caller): stages 1-4 of one tiny video; writes template.json."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    from benchmarks.orchestration import make_tiny_corpus
    from fvc_assets.definitions import defs
    from fvc_assets.ingest.registration import register_new_videos
    from fvc_assets.jobs import VIDEO_PIPELINE_JOB
    from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME
    from fvc_resources.storage import StorageResource
    from dagster_shared.serdes import serialize_value

    storage = StorageResource(data_dir=os.environ["FVC_DATA_DIR"])
    make_tiny_corpus(storage.inbox_dir, 1)
    new, _ = register_new_videos(storage.inbox_dir, storage.registry_dir)
    key = new[0].key
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, [key])
        result = defs.resolve_job_def(VIDEO_PIPELINE_JOB).execute_in_process(instance=instance, partition_key=key)
        assert result.success
        records = instance.all_logs(result.run_id)
        by_kind: dict[str, int] = {}
        asset_events = []
        for record in records:
            kind = record.dagster_event_type
            name = kind.value if kind else "LOG_MESSAGE"
            by_kind[name] = by_kind.get(name, 0) + len(serialize_value(record))
            if kind == DagsterEventType.ASSET_MATERIALIZATION:
                asset_events.append({"kind": "materialization",
                                     "event": serialize_value(record.asset_materialization)})
            elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
                asset_events.append({"kind": "check",
                                     "event": serialize_value(record.dagster_event.event_specific_data)})
    tables = {
        "raw_video": str(storage.raw_video_path(key)),
        "clips": str(storage.clip_table_path(key)),
        "handcrafted": str(storage.handcrafted_features_path(key)),
        "scaled": str(storage.scaled_table_path(key)),
        "scaled_features": str(storage.scaled_features_path(key)),
    }
    (root / "template.json").write_text(json.dumps({
        "key": key, "tables": tables, "event_bytes": sum(by_kind.values()),
        "bytes_by_kind": by_kind, "asset_events": asset_events,
    }))


# --- one size, in its own process ---------------------------------------------------------------------

def platform_ids(manifests: list) -> list[str]:
    """Distinct platform ids of the manifests' rows, in manifest order (each names one local file)."""
    seen: dict[str, None] = {}
    for manifest in manifests:
        for row in manifest.rows:
            if row.platform_id:
                seen.setdefault(row.platform_id, None)
    return list(seen)


def inbox_names(ids: list[str], n: int) -> list[str]:
    """n inbox paths: files named by platform id, then (past the manifests' ids) folder-labelled extras."""
    names = [f"fvc/{i}.mp4" for i in ids[:n]]
    names += [f"extra/{'fake' if i % 2 else 'real'}/x{i:05d}.mp4" for i in range(n - len(names))]
    return names


def write_inbox_files(inbox: Path, names: list[str], offset: int) -> None:
    import numpy as np

    for i, name in enumerate(names):
        path = inbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(np.random.default_rng(offset + i).bytes(FILE_BYTES))


def clone_tables(template: dict, storage, keys: list[str]) -> None:
    """Each key gets the template video's five tables, with its own ids and paths."""
    import polars as pl

    from fvc_resources.atomic import write_parquet_atomic

    old = template["key"]
    frames = {name: pl.read_parquet(path) for name, path in template["tables"].items()}
    targets = {"raw_video": storage.raw_video_path, "clips": storage.clip_table_path,
               "handcrafted": storage.handcrafted_features_path, "scaled": storage.scaled_table_path,
               "scaled_features": storage.scaled_features_path}
    for key in keys:
        for name, frame in frames.items():
            renamed = frame.with_columns(
                pl.col(c).str.replace_all(old, key, literal=True) for c, t in frame.schema.items() if t == pl.String
            )
            target = targets[name](key)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_parquet_atomic(target, renamed)


def timed(fn, repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_size(root: Path, n: int, arrivals: int, template: dict, resolver_up_to: int) -> dict:
    import dagster as dg
    from dagster_shared.record import copy
    from dagster_shared.serdes import deserialize_value

    from fvc_assets.automation import AUTOMATED_ASSETS
    from fvc_assets.definitions import WITH_ENSEMBLE, defs
    from fvc_assets.ingest.manifest import read_manifest
    from fvc_assets.ingest.registration import load_registry
    from fvc_resources.batching import BatchingPolicy
    from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME
    from fvc_assets.train.catalog_assets import video_catalog
    from fvc_assets.train.folds_assets import folds
    from fvc_resources.storage import StorageResource

    out: dict[str, float] = {"videos": n}
    storage = StorageResource(data_dir=os.environ["FVC_DATA_DIR"], inbox_settle_seconds=0)
    for name in MANIFESTS:
        shutil.copyfile(CORPUS_DIR / name, storage.inbox_dir / name)
    ids = platform_ids([read_manifest(storage.inbox_dir / name) for name in MANIFESTS])
    names = inbox_names(ids, n + arrivals)
    write_inbox_files(storage.inbox_dir, names[:n], 0)

    instance = dg.DagsterInstance.get()
    sensor = defs.resolve_sensor_def("inbox_sensor")
    state = {"cursor": None}

    def tick():
        context = dg.build_sensor_context(instance=instance, cursor=state["cursor"],
                                          resources={"storage": storage, "batching": BatchingPolicy()})
        result = sensor(context)
        for request in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, list(request.partition_keys))
        state["cursor"] = result.cursor
        return result

    out["sensor_first_tick_s"] = timed(tick)  # registers all N (hashes N files)
    out["sensor_idle_tick_s"] = timed(tick, repeat=3)
    write_inbox_files(storage.inbox_dir, names[n:], n)
    out["sensor_arrivals_tick_s"] = timed(tick)
    tick()  # the daemon stored the arrivals tick's cursor: the next one is what every idle tick stores
    out["sensor_cursor_bytes"] = len(state["cursor"])
    registry = load_registry(storage.registry_dir)
    keys = sorted(k for k, r in registry.items() if r.relpath in set(names[:n]))
    new_keys = sorted(set(registry) - set(keys))
    assert len(keys) == n and len(new_keys) == arrivals, (len(keys), len(new_keys))

    out["raw_videos_bookkeeping_s"] = timed(lambda: raw_video_bookkeeping(storage, keys[n // 2]), repeat=3)

    clone_tables(template, storage, keys)
    resources = {"storage": storage}
    out["catalog_s"] = timed(lambda: dg.materialize([video_catalog], instance=instance, resources=resources))
    out["folds_s"] = timed(lambda: dg.materialize([video_catalog, folds], selection=[folds.key], instance=instance,
                                                  resources=resources))
    clone_tables(template, storage, new_keys)
    out["catalog_arrivals_s"] = timed(lambda: dg.materialize([video_catalog], instance=instance, resources=resources))
    out["folds_arrivals_s"] = timed(lambda: dg.materialize([video_catalog, folds], selection=[folds.key],
                                                           instance=instance, resources=resources))
    import polars as pl

    out["catalog_clips"] = pl.read_parquet(storage.catalog_path).height

    # The event log as N videos' runs leave it (runless events with the template's metadata).
    events = [(e["kind"], deserialize_value(e["event"])) for e in template["asset_events"]]
    home = Path(os.environ["DAGSTER_HOME"])
    before = directory_bytes(home)
    start = time.perf_counter()
    for key in keys:
        pointers: dict[str, str] = {}  # upstream asset -> storage id of this video's own event
        for kind, event in events:
            if kind == "materialization":
                # Lineage as a run leaves it: each input points at this video's upstream event, so the
                # video reads as up to date (the template's pointers would make every video stale).
                tags = {**(event.tags or {}), **{f"{INPUT_EVENT_POINTER}{asset}": storage_id
                                                for asset, storage_id in pointers.items()
                                                if f"{INPUT_EVENT_POINTER}{asset}" in (event.tags or {})}}
                instance.report_runless_asset_event(event._replace(partition=key, tags=tags))
                asset = event.asset_key.to_user_string()
                # The event just reported is the newest record (this process is the only writer); asking
                # for the partition's latest would scan every partition's events, each time.
                pointers[asset] = str(instance.event_log_storage.get_maximum_record_id())
            else:
                instance.report_runless_asset_event(copy(event, partition=key))
    out["report_events_s"] = time.perf_counter() - start
    out["instance_bytes_per_video"] = (directory_bytes(home) - before) / n
    out["event_bytes_per_video"] = template["event_bytes"]
    out["asset_event_bytes_per_video"] = sum(
        b for kind, b in template["bytes_by_kind"].items() if kind in ("ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION"))

    selection = dg.AssetSelection.assets(*[a for a in AUTOMATED_ASSETS if WITH_ENSEMBLE or a != "ensemble_results"])
    evaluation = {"cursor": None}

    def automation_tick():
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection,
                                                   cursor=evaluation["cursor"])
        evaluation["cursor"] = result.cursor

    out["automation_first_tick_s"] = timed(automation_tick)
    out["automation_tick_s"] = timed(automation_tick, repeat=2)

    out.update(graphql_costs(instance, keys, new_keys, resolver_up_to))
    out["instance_bytes"] = directory_bytes(home)
    instance.dispose()
    return out


def raw_video_bookkeeping(storage, key: str) -> None:
    """What ``raw_videos`` reads and computes for one video besides decoding it (the probe is left out)."""
    from fvc_assets.ingest import assets as ingest

    ingest.identify_video(storage, key)


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


ASSET_PAGE = """
query($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      partitionKeysByDimension { name partitionKeys }
      assetPartitionStatuses {
        ... on DefaultPartitionStatuses { materializedPartitions failedPartitions materializingPartitions }
      }
      assetChecksOrError { ... on AssetChecks { checks { name
        partitionStatuses { ... on AssetCheckDefaultPartitionStatuses { succeededPartitions failedPartitions } }
      } } }
    }
  }
}"""

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  }
}"""


def graphql_costs(instance, keys: list[str], arrived: list[str], resolver_up_to: int) -> dict:
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster_graphql.test.utils import execute_dagster_graphql

    from fvc_assets.definitions import defs
    from fvc_assets.jobs import VIDEO_PIPELINE_JOB
    from fvc_assets.launch.incremental_plan import plan_partitions
    from fvc_assets.launch.plan import job_assets, last_run_failed

    target = WorkspaceFileTarget(paths=[str(REPO_ROOT / "workspace.yaml")])
    with WorkspaceProcessContext(instance, target, version="") as process_context:
        # Entered, as the webserver enters it for each request (dynamic partitions load through it).
        context = process_context.create_request_context().__enter__()

        def asset_page():
            result = execute_dagster_graphql(context, ASSET_PAGE, {"path": ["handcrafted_features"]})
            assert not result.errors, result.errors
            node = result.data["assetNodeOrError"]
            assert len(node["partitionKeysByDimension"][0]["partitionKeys"]) >= len(keys), result
            assert len(node["assetPartitionStatuses"]["materializedPartitions"]) == len(keys), result
            assert {c["name"] for c in node["assetChecksOrError"]["checks"]} >= {"features_complete"}, node

        page = timed(asset_page, repeat=3)
        params = {"partitionNames": keys, "assetSelection": [{"path": [a]} for a in PER_VIDEO_ASSETS]}

        def backfill():
            result = execute_dagster_graphql(context, LAUNCH_BACKFILL, {"params": params})
            kind = result.data["launchPartitionBackfill"]["__typename"]
            assert kind == "LaunchBackfillSuccess", result.data

        def plan():
            # What `fvc run` asked per partition before it kept its verdicts (fvc_assets.launch.plan.out_of_date):
            # the stale status of each of the job's assets, here of all five whatever the verdict.
            with process_context.create_request_context() as fresh:  # the stale-status cache starts empty
                last_run_failed(instance, VIDEO_PIPELINE_JOB)
                resolver = fresh.stale_status_loader
                assets = job_assets(defs, VIDEO_PIPELINE_JOB)
                for key in keys:
                    for asset in assets:
                        resolver.get_status(asset, key)

        # The resolver over every video grows linearly (32 ms a video at 100 and at 5,199): past
        # --resolver-up-to it is not timed (minutes of this machine that tell nothing new).
        planning = timed(plan) if len(keys) <= resolver_up_to else None

        def incremental_plan():  # every registered video, as fvc run plans: the N and the arrivals
            with process_context.create_request_context() as fresh:
                return plan_partitions(instance, fresh, defs, VIDEO_PIPELINE_JOB, sorted(keys + arrived))

        first = time.perf_counter()
        out_of_date = incremental_plan()  # no kept verdicts: asks about every video
        first = time.perf_counter() - first
        # The N videos are up to date; the arrivals, registered but never run, are missing (without asking).
        assert set(out_of_date) == set(arrived), f"{len(out_of_date)} out of date, e.g. {next(iter(out_of_date.items()))}"
        no_op = timed(incremental_plan, repeat=3)
        launch = timed(backfill)
        context.__exit__(None, None, None)
    return {"graphql_asset_page_s": page, "graphql_launch_backfill_s": launch, "fvc_run_planning_s": planning,
            "plan_first_s": first, "plan_no_op_s": no_op}


# --- the table ----------------------------------------------------------------------------------------

ROWS = [
    # label, key, per video?, goal
    ("inbox sensor tick, nothing new (s)", "sensor_idle_tick_s", False, "< 1 s at 5,199"),
    ("inbox sensor tick, {arrivals} new files (s)", "sensor_arrivals_tick_s", False, ""),
    ("inbox sensor first tick, all N new (ms/video)", "sensor_first_tick_s", True, ""),
    ("inbox sensor cursor, stored every tick (KB)", "sensor_cursor_bytes", False, ""),
    ("raw_videos bookkeeping (ms/video)", "raw_videos_bookkeeping_s", False, "<= 1.2x"),
    ("video_catalog (s)", "catalog_s", False, ""),
    ("folds (s)", "folds_s", False, ""),
    ("catalog + folds (s)", "catalog_and_folds_s", False, "< 60 s at 5,199"),
    ("catalog + folds per video (ms/video)", "catalog_and_folds_s", True, "<= 1.2x"),
    ("catalog, {arrivals} arrive (s)", "catalog_arrivals_s", False, ""),
    ("folds, {arrivals} arrive (s)", "folds_arrivals_s", False, ""),
    ("event-log bytes of one video's run (KB)", "event_bytes_per_video", False, "< 50 KB"),
    ("  of which its materialisations and check results (KB)", "asset_event_bytes_per_video", False, ""),
    ("instance growth per video, its events re-reported (KB)", "instance_bytes_per_video", False, "<= 1.2x"),
    ("instance size at the end (MB)", "instance_bytes", False, ""),
    ("stage5_automation tick (s)", "automation_tick_s", False, ""),
    ("GraphQL asset page (s)", "graphql_asset_page_s", False, ""),
    ("fvc run planning, nothing to run: stale status of each asset (ms/video)", "fvc_run_planning_s", True, ""),
    ("fvc run plan, no kept verdicts: every video asked (s)", "plan_first_s", False, ""),
    ("fvc run plan, nothing new since the last (s)", "plan_no_op_s", False, "< 30 s at 100,000"),
    ("GraphQL launch backfill of all (ms/video)", "graphql_launch_backfill_s", True, "<= 1.2x"),
]


def format_value(key: str, value: float | None, per_video: bool, n: int) -> tuple[float | None, str]:
    if value is None:
        return None, "not timed"
    if per_video:
        value = value / n
    if key == "instance_bytes":
        return value, f"{value / 2**20:.1f}"
    if key.endswith("_bytes_per_video") or key.endswith("_bytes"):
        return value, f"{value / 1024:.1f}"
    if per_video or key == "raw_videos_bookkeeping_s":
        return value, f"{value * 1000:.2f}"
    return value, f"{value:.2f}"


def print_results(results: list[dict], arrivals: int) -> None:
    sizes = [int(r["videos"]) for r in results]
    for r in results:
        r["catalog_and_folds_s"] = r["catalog_s"] + r["folds_s"]
    rows = []
    for label, key, per_video, goal in ROWS:
        cells, values = [], []
        for r in results:
            value, text = format_value(key, r[key], per_video, int(r["videos"]))
            values.append(value)
            cells.append(text)
        growth = f"{values[-1] / values[0]:.2f}x" if values[0] and values[-1] is not None else "-"
        rows.append([label.format(arrivals=arrivals), *cells, growth, goal])
    print(f"Platform costs by corpus size (catalog clips: {', '.join(str(int(r['catalog_clips'])) for r in results)})")
    print_table(["measure", *[f"{n:,}" for n in sizes], f"{sizes[-1]:,} / {sizes[0]:,}", "goal"], rows)


def run_in_subprocess(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.scale", *args], cwd=REPO_ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"benchmarks.scale {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,5199")
    parser.add_argument("--arrivals", type=int, default=100)
    parser.add_argument("--resolver-up-to", type=int, default=5199,
                        help="time the stale-status resolver over every video only up to this many videos")
    parser.add_argument("--template", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--one", nargs=3, metavar=("N", "ROOT", "TEMPLATE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.template:
        build_template(Path(args.template))
        return
    if args.one:
        n, root, template = args.one
        result = measure_size(Path(root), int(n), args.arrivals, json.loads(Path(template).read_text()),
                              args.resolver_up_to)
        (Path(root) / "result.json").write_text(json.dumps(result))
        return
    if not all((CORPUS_DIR / m).exists() for m in MANIFESTS):
        sys.exit(f"benchmarks.scale needs the FVC manifests {MANIFESTS} in {CORPUS_DIR}")
    with tempfile.TemporaryDirectory(prefix="fvc-scale-") as tmp:
        tmp = Path(tmp)
        template_root = tmp / "template"
        run_in_subprocess(["--template", str(template_root)], fresh_env(template_root))
        template = template_root / "template.json"
        results = []
        for n in (int(s) for s in args.sizes.split(",")):
            root = tmp / f"n{n}"
            print(f"measuring {n} videos ...", file=sys.stderr, flush=True)
            run_in_subprocess(["--one", str(n), str(root), str(template), "--arrivals", str(args.arrivals),
                               "--resolver-up-to", str(args.resolver_up_to)], fresh_env(root))
            results.append(json.loads((root / "result.json").read_text()))
        print_results(results, args.arrivals)
        kinds = json.loads(template.read_text())["bytes_by_kind"]
        print("\nOne video's run in the event log, by event type (KB): "
              + ", ".join(f"{k} {v / 1024:.1f}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
