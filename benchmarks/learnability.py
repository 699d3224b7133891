"""Does every model learn what its input shows? Held-out ROC-AUC against a control, per model.

    .venv/bin/python -m benchmarks.learnability [--data DIR] [--videos 144] [--models a,b] [--profile demo]
                                                [--set epochs=30 --set optimizer=adamw ...]

Without ``--data`` it writes a demo corpus of the families visible at the frame
models' input (``splice``: every frame model; ``flicker``: the models that see
several frames) into a fresh data root and instance and runs the platform on it
(``fvc run``, training only logistic regression, so that the catalog and folds
exist). With ``--data`` it reads a data root where that already happened.

Then each model trains through the platform's own fold path (``train_fold``) on
all 5 folds at the chosen profile (inner folds off: the outer held-out score is
the one a nested pick would report for it), once with the real labels and once
with control labels orthogonal to them (within each fold, half of each class's groups
flipped, so every fold keeps both labels; ``fvc_assets.train.learnability``). The
share of groups whose control label is their real one is printed beside it (about 0.5). The table gives the held-out ROC-AUC
(mean ± std over folds; pooled over all folds beside it), each visible family's ROC-AUC (its fakes against
every real video), the control's, the mean training loss of the first and last
epoch, and the CPU seconds of the real-label training. The reference is the
control, measured in the same run. ``--set`` overrides one training setting of the profile
(a ``TrainSettings`` field; the ``training`` resource checks and converts the value, as in a run's config).
Demo scores say nothing about real FVC videos.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._measure import REPO_ROOT, print_table

VISIBLE_FAMILIES = ("splice", "flicker")
MODELS = ["logistic_regression", "linear_svm", "xgboost", "naive_cnn", "vit_gru", "vit_transformer", "slowfast",
          "x3d"]


def build_data_root(root: Path, videos: int, seed: int) -> Path:
    """Corpus of the visible families -> ``fvc run`` (stages 1-4, catalog, folds, one cheap model)."""
    data, home = root / "data", root / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster_home" / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "FVC_DATA_DIR": str(data), "FVC_EXECUTOR": "in_process",
           "FVC_MODELS": "logistic_regression"}
    fvc = [sys.executable, "-m", "fvc_assets.cli"]
    subprocess.run([*fvc, "demo-corpus", "--out", str(data / "inbox"), "--videos", str(videos), "--seed", str(seed),
                    "--families", ",".join(VISIBLE_FAMILIES)], env=env, check=True, cwd=REPO_ROOT)
    started = time.perf_counter()
    subprocess.run([*fvc, "run", "--jobs", "2"], env=env, check=True, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
    print(f"pipeline (stages 1-4, catalog, folds): {time.perf_counter() - started:.0f} s", flush=True)
    return data


def setting_override(text: str) -> tuple[str, str]:
    """``key=value`` -> (key, value) for a ``TrainSettings`` field; the ``training`` resource converts the value
    (a mapping such as ``lr_by_model`` is given as JSON: ``lr_by_model={"vit_gru": 3e-4}``)."""
    from fvc_core.train_settings import TrainSettings

    key, sep, value = text.partition("=")
    known = {f.name for f in dataclasses.fields(TrainSettings)}
    if not sep or key not in known:
        raise argparse.ArgumentTypeError(f"{text!r}: give KEY=VALUE with KEY one of {', '.join(sorted(known))}")
    if value.startswith("{"):
        try:
            return key, json.loads(value)
        except json.JSONDecodeError as error:
            raise argparse.ArgumentTypeError(f"{text!r}: the value is not JSON ({error})") from None
    return key, value


def main(argv: list[str] | None = None) -> None:
    import polars as pl

    from fvc_assets.train import learnability
    from fvc_assets.train.folds import N_FOLDS
    from fvc_resources.training import TrainingResource

    parser = argparse.ArgumentParser(prog="benchmarks.learnability")
    parser.add_argument("--data", type=Path, help="a data root with catalog/ (default: build one)")
    parser.add_argument("--videos", type=int, default=144)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--set", type=setting_override, action="append", default=[], metavar="KEY=VALUE",
                        help="override one training setting of the profile (repeatable)")
    args = parser.parse_args(argv)
    # The platform's own resource applies the profile and the overrides, and validates each value's type.
    settings = TrainingResource(profile=args.profile, **{"inner_folds": False, "device": "cpu", "pretrained": False,
                                                         **dict(args.set)}).settings()
    with tempfile.TemporaryDirectory(prefix="fvc-learnability-") as work:
        data = args.data or build_data_root(Path(work), args.videos, args.seed)
        catalog = pl.read_parquet(data / "catalog" / "video_catalog.parquet")
        folds = pl.read_parquet(data / "catalog" / "folds.parquet")
        families = sorted(f for f in catalog["manipulation"].unique().to_list() if f)
        rows = []
        for model in args.models.split(","):
            result = learnability.measure(model, catalog, folds, settings, root=data, workdir=Path(work) / "probe",
                                          frames_cache=data / "train" / "frames_cache", n_folds=N_FOLDS)
            per_fold = pl.Series(result.fold_roc_auc).drop_nans()
            rows.append({
                "model": model,
                "roc_auc (folds)": f"{per_fold.mean():.3f} ± {per_fold.std():.3f}",
                "pooled": f"{result.pooled_roc_auc:.3f}",
                **{family: f"{result.family_roc_auc.get(family, float('nan')):.3f}" for family in families},
                "control (folds)": f"{result.control_roc_auc:.3f}",
                "control = real": f"{result.control_agreement:.2f}",
                "loss first → last epoch": f"{result.first_loss:.3f} → {result.last_loss:.3f}",
                "cpu_s": f"{result.cpu_seconds:.0f}",
            })
            print(rows[-1], flush=True)
    changed = ", ".join(f"{key}={value}" for key, value in args.set)
    print(f"\nLearnability at the {args.profile} profile{f' with {changed}' if changed else ''} "
          f"({catalog['video_id'].n_unique()} videos, families "
          f"{', '.join(families)}; mean held-out ROC-AUC over {N_FOLDS} folds, pooled beside it; control = labels orthogonal "
          "to the real ones):")
    print_table(list(rows[0]), [list(r.values()) for r in rows])


if __name__ == "__main__":
    main(sys.argv[1:])
