"""The ``fvc`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from fvc_core.batches import DEFAULT_BATCH_ABOVE, DEFAULT_BATCH_SIZE


def _cmd_demo_corpus(args: argparse.Namespace) -> int:
    from collections import Counter

    from fvc_assets.demo.corpus import check_families, plan_corpus, shrink, write_corpus

    try:
        families = check_families(f for f in args.families.replace(",", " ").split())
    except ValueError as exc:
        print(f"fvc demo-corpus: {exc}", file=sys.stderr)
        return 2
    try:
        max_frames = args.max_frames or None  # 0: no cap
        plan = shrink(plan_corpus(args.videos, args.seed, families, args.duplicates), args.scale, max_frames)
    except ValueError as exc:
        print(f"fvc demo-corpus: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    manifest = write_corpus(args.out, n_videos=args.videos, seed=args.seed, families=families,
                            scale=args.scale, max_frames=max_frames, duplicates=args.duplicates)
    labels = {label: sum(v.label == label for v in plan) for label in ("fake", "real")}
    by_family = Counter(v.manipulation for v in plan if v.label == "fake")
    print(
        f"wrote {len(plan)} videos ({labels['fake']} fake: "
        f"{', '.join(f'{n} {name}' for name, n in sorted(by_family.items()))}; {labels['real']} real) "
        f"and {manifest} in {time.perf_counter() - started:.1f}s"
    )
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from fvc_assets.launch.environment import configure_environment

    home, data = configure_environment()
    print(f"DAGSTER_HOME={home}\nFVC_DATA_DIR={data}", flush=True)
    from fvc_assets.launch.command import run_command

    return run_command(args, data)


@contextmanager
def predict_progress(total: int, stream=None, enabled: bool | None = None):
    """A live line (videos scored / total, failures, ETA) on a terminal; nothing otherwise."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc="fvc predict", unit="video", file=stream or sys.stderr,
               disable=(None if total > 1 else True) if enabled is None else not enabled, dynamic_ncols=True)
    failed = 0

    def scored(prediction) -> None:
        nonlocal failed
        failed += prediction.probability_fake is None
        bar.set_postfix_str(f"{failed} failed" if failed else "", refresh=False)
        bar.update(1)

    try:
        yield scored
    finally:
        bar.close()


def video_paths(given: list[str]) -> list[Path]:
    """Files as given; a folder stands for the video files under it (as the inbox sensor finds them)."""
    from fvc_assets.ingest.registration import scan_inbox

    out = []
    for text in given:
        path = Path(text).absolute()
        if not path.is_dir():
            out.append(path)
            continue
        found, rejected = scan_inbox(path)
        for item in rejected:
            print(f"fvc predict: skipping {item.path}: {item.reason}", file=sys.stderr)
        out += found
    return out


def _cmd_predict(args: argparse.Namespace) -> int:
    import json

    from fvc_assets.launch.environment import configure_environment

    _, data = configure_environment()
    from fvc_assets.predict import as_json, decide, predict_videos, predictions_table
    from fvc_resources.storage import StorageResource

    storage = StorageResource(data_dir=str(data))
    model = args.model
    best = storage.comparison_dir / "best_model.json"
    thresholds = json.loads(best.read_text()).get("thresholds", {}) if best.exists() else {}
    if model is None:
        if not best.exists():
            print(f"no model comparison at {best}: run `fvc run` first, or name a model with --model", file=sys.stderr)
            return 2
        model = json.loads(best.read_text())["best_model"]
        if model is None:
            print("the last comparison found no model with a ROC-AUC; name one with --model", file=sys.stderr)
            return 2
    from fvc_assets.train.models.feature_model import PickleRefused

    videos = video_paths(args.videos)
    if not videos:
        print("fvc predict: no video file among the paths given", file=sys.stderr)
        return 2
    try:
        with predict_progress(len(videos)) as scored:
            predictions = predict_videos(videos, storage.root, storage.train_dir,
                                         storage.frames_cache_dir, storage.predict_dir, model, on_scored=scored,
                                         allow_pickle=args.allow_pickle)
    except PickleRefused as refused:
        print(f"fvc predict: {refused}", file=sys.stderr)
        return 2
    decide(predictions, thresholds.get(model), args.operating_point)
    if args.json:
        print(as_json(predictions))
    else:
        print(predictions_table(predictions))
    return 0 if all(p.probability_fake is not None for p in predictions) else 1


def tracking_uri_of(home: Path, given: str | None = None) -> str:
    """The MLflow store a command reads: given, else MLFLOW_TRACKING_URI, else the instance's embedded one."""
    from fvc_resources.tracking import embedded_store

    return given or os.environ.get("MLFLOW_TRACKING_URI") or embedded_store(home)[0]


def _cmd_serve(args: argparse.Namespace) -> int:
    from fvc_assets.launch.environment import configure_environment

    home, data = configure_environment()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per fetched bundle, in the log
    import uvicorn
    from pydantic import ValidationError

    from fvc_assets.serve.app import create_app
    from fvc_assets.serve.served_model import NoModelInService, served_model
    from fvc_assets.serve.settings import ServeSettings, read_token
    from fvc_resources.model_registry import ModelRegistry

    overrides = {"token_file": args.token_file, "host": args.host, "port": args.port,
                 "model_version": args.model_version, "workers": args.workers, "paths_root": args.paths_root}
    try:
        settings = ServeSettings.load(args.config, overrides)
        token = read_token(settings.token_file)
        registry = ModelRegistry(tracking_uri_of(home, settings.tracking_uri), name=settings.registered_model,
                                 alias=settings.alias)
        served = served_model(registry, data / "serve" / "models", settings.model_version)  # fail here, not later
    except (ValidationError, ValueError, OSError, NoModelInService) as exc:
        print(f"fvc serve: {exc}", file=sys.stderr)
        return 2
    print(f"fvc serve: {served.name} version {served.version} ({served.source}) on "
          f"http://{settings.host}:{settings.port} (docs at /docs); token from {settings.token_file}", flush=True)
    uvicorn.run(create_app(settings, token, data, registry), host=settings.host, port=settings.port,
                log_level="info", timeout_graceful_shutdown=int(settings.request_timeout_s))
    return 0


def _cmd_model(args: argparse.Namespace) -> int:
    from fvc_assets.launch.environment import configure_environment

    home, _ = configure_environment()
    from fvc_resources.model_registry import ModelRegistry

    registry = ModelRegistry(tracking_uri_of(home, args.tracking_uri), name=args.registered_model)
    try:
        if args.action == "list":
            versions = registry.versions()
            if not versions:
                print(f"{registry.name}: no versions in {registry.uri} (run `fvc run` first)")
            for v in versions:
                mark = f"@{registry.alias}" if v.is_champion else ""
                print(f"v{v.version:<4}{mark:<10} {v.tags.get('model', '?'):<20} {v.tags.get('score_kind', '')} "
                      f"ROC-AUC {v.tags.get('score', '?'):<7} {v.created}  {v.tags.get('promotion', '')}")
        elif args.action == "promote":
            import getpass

            previous = registry.set_champion(args.version, f"by hand ({getpass.getuser()})", args.reason)
            print(f"{registry.name}@{registry.alias} = v{args.version}"
                  + (f" (was v{previous.version})" if previous else ""))
        else:
            left, now = registry.rollback(args.version)
            print(f"{registry.name}@{registry.alias} = v{now.version} (was v{left.version})")
    except LookupError as exc:
        print(f"fvc model: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_mlflow_ui(args: argparse.Namespace) -> int:
    import subprocess

    from fvc_assets.launch.environment import configure_environment

    home, _ = configure_environment()
    from fvc_resources.tracking import embedded_store

    _, artifact_root = embedded_store(home)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri_of(home),
               "--default-artifact-root", artifact_root, "--host", args.host, "--port", str(args.port)]
    return subprocess.call(command)


def _cmd_ui(args: argparse.Namespace) -> int:
    import subprocess

    from fvc_assets.launch.environment import PROJECT_ROOT, configure_environment

    configure_environment()
    command = [
        sys.executable, "-m", "dagster", "dev",
        "-w", str(PROJECT_ROOT / "workspace.yaml"),
        "--host", args.host, "--port", str(args.port),
    ]
    return subprocess.call(command, cwd=PROJECT_ROOT, env=os.environ.copy())


def build_parser() -> argparse.ArgumentParser:
    from fvc_assets.demo.corpus import DEFAULT_MAX_FRAMES, DEFAULT_SCALE, DEFAULT_VIDEOS, FAMILIES
    from fvc_assets.train.operating_points import DEFAULT_OPERATING_POINT, point_names

    parser = argparse.ArgumentParser(prog="fvc", description="FVC fake-video classification platform")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo-corpus", help="write a deterministic demo corpus and its FVC manifest")
    demo.add_argument("--out", type=Path, required=True, help="folder to write into (e.g. data/inbox)")
    demo.add_argument("--videos", type=int, default=DEFAULT_VIDEOS, help=f"number of videos (default {DEFAULT_VIDEOS})")
    demo.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    demo.add_argument("--families", default=" ".join(FAMILIES),
                      help=f"manipulation families of the fakes, comma or space separated (default: all: "
                           f"{', '.join(FAMILIES)})")
    demo.add_argument("--scale", type=float, default=DEFAULT_SCALE,
                      help=f"frame sides times this, in (0, 1] (default {DEFAULT_SCALE}; 1: the plan's full sizes): "
                           "a smaller corpus, same labels and groups")
    demo.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES,
                      help=f"at most this many frames per source video (at least 8, or 0 for no cap; "
                           f"default {DEFAULT_MAX_FRAMES})")
    demo.add_argument("--duplicates", type=int, default=None,
                      help="how many of the videos are near-duplicates of another (reposts: same dup_group; "
                           "default a third); the rest are sources")
    demo.set_defaults(func=_cmd_demo_corpus)

    run = sub.add_parser(
        "run",
        help="register inbox videos, materialise every video partition, then train and compare the models",
        description="Uses DAGSTER_HOME (default ./dagster_home) and FVC_DATA_DIR (default ./data).",
    )
    run.add_argument("--partition", action="append", help="only this video partition (repeatable)")
    run.add_argument("--verbose", action="store_true",
                     help="the daemon's own log at debug level, on the terminal (else in DAGSTER_HOME/logs)")
    run.add_argument("--skip-training", action="store_true",
                     help="stages 1-4 only (stage 5 also does not run with --partition)")
    run.add_argument("--jobs", type=int, default=None,
                     help="runs side by side: max_concurrent_runs of the daemon this command starts "
                          "(default: the instance's concurrency.runs.max_concurrent_runs)")
    run.add_argument("--force", action="store_true",
                     help="run every partition again, not only the missing, failed or stale ones")
    run.add_argument("--run-config", type=Path,
                     help="YAML run config for every run, e.g. execution: {config: {slurm: {partition: gpu}}}")
    run.add_argument("--batch-size", type=int, default=None,
                     help="videos per run when videos run in batches: one run per stage over up to this many "
                          f"consecutive videos (default: the batching resource's, {DEFAULT_BATCH_SIZE}; 1: never batch)")
    run.add_argument("--batch-above", type=int, default=None,
                     help="batch when more than this many videos are to run; fewer run one run per video "
                          f"(default: the batching resource's, {DEFAULT_BATCH_ABOVE})")
    run.set_defaults(func=_cmd_run)

    ui = sub.add_parser("ui", help="start the Dagster UI and daemon (dagster dev) on 127.0.0.1")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=_cmd_ui)
    predict = sub.add_parser(
        "predict", help="probability that each video is fake, from the best model (or --model)",
        description="Runs stages 1-4 on each video (into $FVC_DATA_DIR/predict/) and averages the five fold models.",
    )
    predict.add_argument("videos", nargs="+", help="video files, or folders of them (read only)")
    predict.add_argument("--model", help="a trained model's name (default: best by mean ROC-AUC)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict.add_argument("--allow-pickle", action="store_true",
                         help="load model.joblib pickles written by earlier versions (they run code when loaded: "
                              "only for files you trust)")
    predict.add_argument("--operating-point", default=DEFAULT_OPERATING_POINT, choices=point_names(),
                         help="decide at this operating point: fpr_1 / fpr_5 (thresholds at 1 %% / 5 %% of real "
                              "videos flagged) or top_10 (the top 10 %% of scores); thresholds from the last "
                              f"comparison's held-out scores (default {DEFAULT_OPERATING_POINT})")
    predict.set_defaults(func=_cmd_predict)

    serve = sub.add_parser(
        "serve", help="score videos over HTTP with the model in service (bearer token, 127.0.0.1 by default)",
        description="Settings come from --config (YAML; keys as in fvc_assets/serve/settings.py), each "
                    "overridable by the options below. Uses FVC_DATA_DIR (default ./data).")
    serve.add_argument("--config", type=Path, help="YAML settings file")
    serve.add_argument("--token-file", type=Path, help="file holding the bearer token (mode 600)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--model-version", help="serve this registry version (default: follow the champion alias)")
    serve.add_argument("--workers", type=int, help="scoring processes (default 2)")
    serve.add_argument("--paths-root", type=Path, help="folder whose videos /v1/score/paths may read")
    serve.set_defaults(func=_cmd_serve)

    model = sub.add_parser("model", help="the registry's model versions: list, promote by hand, roll back",
                           description="Versions come from fvc run's promotion (deployed_model); the champion "
                                       "alias is what fvc serve answers with.")
    model.add_argument("--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI, else the embedded store)")
    model.add_argument("--registered-model", default="fvc-detector")
    actions = model.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every version, newest first, with its score and promotion history")
    promote = actions.add_parser("promote", help="make VERSION the champion by hand (bypasses the gate; recorded)")
    promote.add_argument("version")
    promote.add_argument("--reason", required=True, help="why, kept on the version")
    rollback = actions.add_parser("rollback", help="the champion back to the version it replaced (or VERSION)")
    rollback.add_argument("version", nargs="?")
    model.set_defaults(func=_cmd_model)

    mlflow_ui = sub.add_parser("mlflow-ui", help="open the MLflow UI on the embedded store (127.0.0.1)")
    mlflow_ui.add_argument("--host", default="127.0.0.1")
    mlflow_ui.add_argument("--port", type=int, default=5000)
    mlflow_ui.set_defaults(func=_cmd_mlflow_ui)
    return parser


# Options whose values may begin with "-": YouTube ids, and so partition keys, often do.
DASH_VALUE_OPTIONS = ("--partition",)


def attach_dash_values(argv: list[str]) -> list[str]:
    """``--partition -SXat-rG3O4`` -> ``--partition=-SXat-rG3O4``: argparse would read a value
    that begins with "-" as an option and stop with "expected one argument"."""
    out: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            out += [token, *tokens]
            break
        if token in DASH_VALUE_OPTIONS:
            value = next(tokens, None)
            out.append(token if value is None else f"{token}={value}")
        else:
            out.append(token)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(attach_dash_values(sys.argv[1:] if argv is None else argv))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
