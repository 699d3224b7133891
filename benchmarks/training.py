"""Stage 5 costs per model: training seconds per fold, peak memory, inference clips per second.

    .venv/bin/python -m benchmarks.training [DATA_DIR]     (default $FVC_DATA_DIR or ./data)

Needs a data root where `make demo` (or `fvc run`) has built ``catalog/`` and
``catalog/folds.parquet``. Each model trains on fold 0 at the demo settings in
its own process (so its peak RSS is its own), then scores the held-out fold's
clips twice (the second pass, frames cached, is the one timed). Ratios are
against logistic regression measured in the same run. With CUDA present,
vit_gru, slowfast and x3d also run at their full default sizes (224 px, 8
frames, vit_base; random weights, as no hub is reachable here).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._measure import REPO_ROOT, peak_mb, print_table

MODELS = ["logistic_regression", "linear_svm", "xgboost", "naive_cnn", "vit_gru", "vit_transformer", "slowfast",
          "x3d"]
GPU_FULL = ["vit_gru", "slowfast", "x3d"]


def measure_one(model: str, data: str, profile: str) -> dict:
    import polars as pl

    from fvc_assets.train.fold_training import fold_rows
    from fvc_assets.train.models.base import FitContext
    from fvc_assets.train.models.registry import build_model
    from fvc_core.train_settings import PROFILES

    root = Path(data)
    settings = PROFILES[profile]
    if profile == "full":
        settings = dataclasses.replace(settings, pretrained=False, epochs=1)
    catalog = pl.read_parquet(root / "catalog" / "video_catalog.parquet")
    folds = pl.read_parquet(root / "catalog" / "folds.parquet")
    train, held_out, augmented = fold_rows(catalog, folds, 0)
    scored = pl.concat([held_out, augmented])
    with tempfile.TemporaryDirectory() as work:
        context = FitContext(root=root, workdir=Path(work), frames_cache=root / "train" / "frames_cache",
                             log=lambda _: None)
        instance = build_model(model, settings)
        started = time.perf_counter()
        instance.fit(train, context)
        train_seconds = time.perf_counter() - started
        instance.predict(scored, context)  # warm: frames decoded into the cache
        started = time.perf_counter()
        instance.predict(scored, context)
        infer_seconds = time.perf_counter() - started
    return {"train_s": train_seconds, "clips_per_s": scored.height / infer_seconds, "peak_mb": peak_mb(),
            "device": context.info.get("device", "cpu"), "training_clips": context.info.get("training_clips")}


def run_one(model: str, data: str, profile: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.training", "--one", model, data, profile],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(data: str | None = None) -> None:
    import torch

    data = str(Path(data or os.environ.get("FVC_DATA_DIR") or REPO_ROOT / "data").absolute())
    if not (Path(data) / "catalog" / "folds.parquet").exists():
        print(f"benchmarks.training: no catalog/folds under {data}; run `make demo` first (skipped)")
        return
    runs = [(m, "demo") for m in MODELS]
    if torch.cuda.is_available():
        runs += [(m, "full") for m in GPU_FULL]
    results = {(m, p): run_one(m, data, p) for m, p in runs}
    reference = results[("logistic_regression", "demo")]
    rows = []
    for (model, profile), r in results.items():
        rows.append([model, profile, r["device"], r["training_clips"], f"{r['train_s']:.2f}",
                     f"{r['train_s'] / reference['train_s']:.0f}x", f"{r['peak_mb']:.0f}",
                     f"{r['peak_mb'] / reference['peak_mb']:.1f}x", f"{r['clips_per_s']:.0f}"])
    print(f"Stage 5, fold 0 of the catalog in {data} (ratios vs logistic_regression, same run)")
    print_table(["model", "settings", "device", "train clips", "train s", "vs LR", "peak MB", "vs LR",
                 "infer clips/s"], rows)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        print(json.dumps(measure_one(*sys.argv[2:5])))
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else None)
