"""The ``fvc`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _cmd_demo_corpus(args: argparse.Namespace) -> int:
    from fvc_assets.demo.corpus import plan_corpus, write_corpus

    started = time.perf_counter()
    manifest = write_corpus(args.out, n_videos=args.videos, seed=args.seed)
    plan = plan_corpus(args.videos, args.seed)
    labels = {label: sum(v.label == label for v in plan) for label in ("fake", "real")}
    print(
        f"wrote {len(plan)} videos ({labels['fake']} fake, {labels['real']} real) and {manifest} "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from fvc_assets.environment import configure_environment

    home, data = configure_environment()
    from fvc_assets.runner import recover_orphaned_runs, run_all

    print(f"DAGSTER_HOME={home}\nFVC_DATA_DIR={data}")
    for run_id in recover_orphaned_runs():
        print(f"RECOVERED run {run_id}: its process had died; marked failed, its pool slots freed", flush=True)
    started = time.perf_counter()

    def progress(outcome):
        status = "ok    " if outcome.success else "FAILED"
        print(f"  {status} {outcome.key}", flush=True)

    summary = run_all(
        args.partition or None,
        on_outcome=progress,
        log_level="DEBUG" if args.verbose else "WARNING",
        jobs=max(1, args.jobs),
    )
    elapsed = time.perf_counter() - started
    print(
        f"\n{len(summary.outcomes)} video partition(s) run, {len(summary.failed)} failed, "
        f"{len(summary.registered)} newly registered, in {elapsed:.1f}s"
    )
    for outcome in summary.failed:
        print(f"FAILED {outcome.key} ({outcome.path}): {outcome.error}")
    for item in summary.rejected:
        print(f"NOT INGESTED {item.path}: {item.reason}")
    for problem in summary.manifest_problems:
        print(f"MANIFEST {problem}")
    ok = summary.ok
    if not (args.skip_training or args.partition):
        ok = _train(args) and ok
    return 0 if ok else 1


def _train(args: argparse.Namespace) -> bool:
    from fvc_assets.train_runner import run_training

    print("\nstage 5: catalog, folds, every model x fold, comparison")
    started = time.perf_counter()

    def progress(outcome):
        print(f"  {'ok    ' if outcome.success else 'FAILED'} {outcome.name}", flush=True)

    training = run_training(progress, "DEBUG" if args.verbose else "WARNING", max(1, args.jobs))
    print(f"\n{len(training.outcomes)} training run(s), {len(training.failed)} failed, "
          f"in {time.perf_counter() - started:.1f}s")
    for outcome in training.failed:
        print(f"FAILED {outcome.name}: {outcome.error}")
    _print_comparison()
    return not training.failed


def _print_comparison() -> None:
    import json

    import polars as pl

    from fvc_assets.train.comparison import plain_table
    from fvc_resources.storage import StorageResource

    out = StorageResource().comparison_dir
    if not (out / "table.parquet").exists():
        return
    print("\nModel comparison (held-out videos, mean ± std over 5 folds; demo scores say nothing about real FVC):")
    print(plain_table(pl.read_parquet(out / "table.parquet")))
    best = json.loads((out / "best_model.json").read_text())
    print(f"\nbest model by mean ROC-AUC: {best['best_model']}; plots and tables in {out}")


def _cmd_predict(args: argparse.Namespace) -> int:
    import json

    from fvc_assets.environment import configure_environment

    configure_environment()
    from fvc_assets.predict import as_json, predict_videos
    from fvc_resources.storage import StorageResource

    storage = StorageResource()
    model = args.model
    if model is None:
        best = storage.comparison_dir / "best_model.json"
        if not best.exists():
            print(f"no model comparison at {best}: run `fvc run` first, or name a model with --model", file=sys.stderr)
            return 2
        model = json.loads(best.read_text())["best_model"]
        if model is None:
            print("the last comparison found no model with a ROC-AUC; name one with --model", file=sys.stderr)
            return 2
    predictions = predict_videos([Path(p).absolute() for p in args.videos], storage.root, storage.train_dir,
                                 storage.frames_cache_dir, storage.predict_dir, model)
    if args.json:
        print(as_json(predictions))
    else:
        width = max(len(p.path) for p in predictions)
        print(f"{'video'.ljust(width)}  P(fake)  model (mean of its fold models)")
        for p in predictions:
            value = f"{p.probability_fake:.3f}  " if p.probability_fake is not None else "error    "
            print(f"{p.path.ljust(width)}  {value} {p.model}{'  ' + p.error if p.error else ''}")
    return 0 if all(p.probability_fake is not None for p in predictions) else 1


def _cmd_mlflow_ui(args: argparse.Namespace) -> int:
    import subprocess

    from fvc_assets.environment import configure_environment

    configure_environment()
    from fvc_resources.tracking import default_artifact_root, default_tracking_uri

    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", default_tracking_uri(),
               "--default-artifact-root", default_artifact_root(), "--host", args.host, "--port", str(args.port)]
    return subprocess.call(command)


def _cmd_ui(args: argparse.Namespace) -> int:
    import os
    import subprocess

    from fvc_assets.environment import PROJECT_ROOT, configure_environment

    configure_environment()
    command = [
        sys.executable, "-m", "dagster", "dev",
        "-w", str(PROJECT_ROOT / "workspace.yaml"),
        "--host", args.host, "--port", str(args.port),
    ]
    return subprocess.call(command, cwd=PROJECT_ROOT, env=os.environ.copy())


def build_parser() -> argparse.ArgumentParser:
    from fvc_assets.demo.corpus import DEFAULT_VIDEOS

    parser = argparse.ArgumentParser(prog="fvc", description="FVC fake-video classification platform")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo-corpus", help="write a deterministic demo corpus and its FVC manifest")
    demo.add_argument("--out", type=Path, required=True, help="folder to write into (e.g. data/inbox)")
    demo.add_argument("--videos", type=int, default=DEFAULT_VIDEOS, help=f"number of videos (default {DEFAULT_VIDEOS})")
    demo.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    demo.set_defaults(func=_cmd_demo_corpus)

    run = sub.add_parser(
        "run",
        help="register inbox videos, materialise every video partition, then train and compare the models",
        description="Uses DAGSTER_HOME (default ./dagster_home) and FVC_DATA_DIR (default ./data).",
    )
    run.add_argument("--partition", action="append", help="only this video partition (repeatable)")
    run.add_argument("--verbose", action="store_true", help="print Dagster's event log while running")
    run.add_argument("--skip-training", action="store_true",
                     help="stages 1-4 only (stage 5 also does not run with --partition)")
    run.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                     help="video partitions run side by side, one process each (default: CPU count)")
    run.set_defaults(func=_cmd_run)

    ui = sub.add_parser("ui", help="start the Dagster UI and daemon (dagster dev) on 127.0.0.1")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=_cmd_ui)
    predict = sub.add_parser(
        "predict", help="probability that each video is fake, from the best model (or --model)",
        description="Runs stages 1-4 on each video (into $FVC_DATA_DIR/predict/) and averages the five fold models.",
    )
    predict.add_argument("videos", nargs="+", help="video files (read only)")
    predict.add_argument("--model", help="a trained model's name (default: best by mean ROC-AUC)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict.set_defaults(func=_cmd_predict)

    mlflow_ui = sub.add_parser("mlflow-ui", help="open the MLflow UI on the embedded store (127.0.0.1)")
    mlflow_ui.add_argument("--host", default="127.0.0.1")
    mlflow_ui.add_argument("--port", type=int, default=5000)
    mlflow_ui.set_defaults(func=_cmd_mlflow_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
