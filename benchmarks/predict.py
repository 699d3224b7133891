"""Scoring a new video (`fvc predict`), what a moderator waits for, against stage 2 on the same video.

    .venv/bin/python -m benchmarks.predict [DATA_DIR]     (default $FVC_DATA_DIR or ./data; also in `make bench`)

1. Stage 2's sampling and features of a 1080p 60 s video (the reference), and
   `fvc predict`'s own preparation of it (the 15 + 8 features from one sampling
   pass), each in a fresh process: goal <= 1.5x stage 2's time, peak RSS < 400 MB.
2. With a trained data root (`make demo`): the whole of predict_videos on that video
   with the best feature model (models loaded, 5 fold models scored, reasons), then a
   second video in the same call (models already loaded), and the same with one frame
   model (x3d: the 256-pixel clip is written too).
3. With a trained data root: the gap between predict's features and the pipeline's for
   the demo videos' originals (stage 4 reads frames back from the x264 clip; predict
   resizes the sampled frames), and what it does to the best feature model's score.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from benchmarks._measure import cli, in_subprocess, peak_mb, print_table
from benchmarks.sampling import make_video

FRAME_MODEL = "x3d"


def _count(frames: int) -> int:
    from fvc_assets.predict import _count as predict_count

    return predict_count(frames)


def _stage2_one(path: str) -> dict:
    from fvc_assets.features.extract import clip_features

    start = time.perf_counter()
    clip_features(path, _count)
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_mb()}


def _prepare_one(path: str) -> dict:
    from fvc_assets.features.extract import source_and_scaled_features
    from fvc_assets.predict import SCALE_TARGET

    start = time.perf_counter()
    source_and_scaled_features(path, _count, SCALE_TARGET)
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_mb()}


def _predict_one(spec: str) -> dict:
    """``spec``: JSON {data, model, videos}. Times each video of one predict_videos call."""
    import tempfile

    from fvc_assets.predict import predict_videos
    from fvc_resources.storage import StorageResource

    args = json.loads(spec)
    storage = StorageResource(data_dir=args["data"])
    stamps = [time.perf_counter()]
    with tempfile.TemporaryDirectory(dir=storage.root) as work:  # clips are kept relative to the root
        predictions = predict_videos([Path(v) for v in args["videos"]], storage.root, storage.train_dir,
                                     storage.frames_cache_dir, Path(work), args["model"],
                                     on_scored=lambda _: stamps.append(time.perf_counter()))
    errors = [p.error for p in predictions if p.probability_fake is None]
    if errors:
        raise SystemExit(f"predict failed: {errors}")
    return {"seconds": [b - a for a, b in zip(stamps, stamps[1:])], "peak_mb": peak_mb()}


def _feature_gap_one(data: str) -> dict:
    """Predict's features of each demo original against the catalog's, and the score each gives."""
    import numpy as np
    import polars as pl

    from fvc_assets.features.extract import source_and_scaled_features
    from fvc_assets.features.scaled import SCALED_FEATURES
    from fvc_assets.predict import SCALE_TARGET, FoldModels, fold_folders
    from fvc_assets.train.models.base import FitContext
    from fvc_resources.storage import StorageResource

    storage = StorageResource(data_dir=data)
    best = json.loads((storage.comparison_dir / "best_model.json").read_text())["best_model"]
    model = best if best in ("logistic_regression", "linear_svm", "xgboost") else "xgboost"
    catalog = pl.read_parquet(storage.catalog_path).filter(pl.col("augmentation") == "original")
    raw = {key: pl.read_parquet(storage.raw_video_path(key)).row(0, named=True)["path"]
           for key in catalog["video_id"].to_list()}
    folders = fold_folders(storage.train_dir, model, storage.root)
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        models = FoldModels(storage.train_dir, storage.root, FitContext(root=storage.root, workdir=Path(work),
                                                                        frames_cache=Path(work)))
        gaps, score_gaps = {name: [] for name in SCALED_FEATURES}, []
        for row in catalog.iter_rows(named=True):
            _, scaled = source_and_scaled_features(raw[row["video_id"]], _count, SCALE_TARGET)
            for name in SCALED_FEATURES:
                gaps[name].append(abs(scaled[name] - row[name]) / max(abs(row[name]), 1e-9))
            ours = pl.DataFrame([{**row, **scaled}])
            theirs = pl.DataFrame([row])
            score = lambda frame: np.mean([models.score(model, f.name, frame) for f in folders])  # noqa: E731
            score_gaps.append(abs(score(ours) - score(theirs)))
    return {"model": model, "videos": catalog.height,
            "median_rel_gap": {k: float(np.median(v)) for k, v in gaps.items()},
            "max_rel_gap": {k: float(np.max(v)) for k, v in gaps.items()},
            "score_gap_median": float(np.median(score_gaps)), "score_gap_max": float(np.max(score_gaps))}


def one(what: str, arg: str, n: int) -> dict:
    if what == "stage2":
        return _stage2_one(arg)
    if what == "prepare":
        return _prepare_one(arg)
    if what == "predict":
        return _predict_one(arg)
    return _feature_gap_one(arg)


def trained_root(argv: list[str]) -> Path | None:
    data = Path(argv[0] if argv else os.environ.get("FVC_DATA_DIR", "data"))
    best = data / "comparison" / "best_model.json"
    return data if best.exists() else None


def main(argv: list[str] | None = None) -> None:
    video = make_video("1080p_60s", "1920x1080", 60, "6M")
    second = make_video("1080p_10s", "1920x1080", 10, "6M")
    stage2 = in_subprocess("benchmarks.predict", "stage2", str(video), "0")
    prepare = in_subprocess("benchmarks.predict", "prepare", str(video), "0")
    rows = [["stage 2: sampling + 15 features (reference)", f"{stage2['seconds']:.2f}", "1.00",
             f"{stage2['peak_mb']:.0f}"],
            ["fvc predict's features (15 + 8, one pass)", f"{prepare['seconds']:.2f}",
             f"{prepare['seconds'] / stage2['seconds']:.2f}", f"{prepare['peak_mb']:.0f}"]]
    data = trained_root(sys.argv[1:] if argv is None else argv)
    gap = None
    if data:
        best = json.loads((data / "comparison" / "best_model.json").read_text())["best_model"]
        feature_model = best if best in ("logistic_regression", "linear_svm", "xgboost") else "xgboost"
        for model in (feature_model, FRAME_MODEL):
            r = in_subprocess("benchmarks.predict", "predict",
                              json.dumps({"data": str(data), "model": model, "videos": [str(video), str(second)]}),
                              "0")
            first, then = r["seconds"]
            rows.append([f"predict_videos, {model}: 1080p 60 s (models loaded)", f"{first:.2f}",
                         f"{first / stage2['seconds']:.2f}", f"{r['peak_mb']:.0f}"])
            rows.append(["  then a 1080p 10 s video in the same call", f"{then:.2f}", "", ""])
        gap = in_subprocess("benchmarks.predict", "gap", str(data), "0")
    print(f"Scoring a new 1080p 60 s video, against stage 2 on it (goal <= 1.5x, peak < 400 MB)"
          f"{'' if data else '; no trained data root: run `make demo` for the model rows'}\n")
    print_table(["step", "seconds", "x stage 2", "peak RSS MB"], rows)
    if gap:
        print(f"\nPredict's stage-4 features against the pipeline's, {gap['videos']} demo originals "
              f"(relative gap, median / max), and the {gap['model']} score they give:\n")
        print_table(["feature", "median", "max"], [[k, f"{gap['median_rel_gap'][k]:.3f}",
                                                    f"{gap['max_rel_gap'][k]:.3f}"] for k in gap["median_rel_gap"]])
        print(f"\nP(fake) gap from scoring predict's features instead of the catalog's: median "
              f"{gap['score_gap_median']:.4f}, max {gap['score_gap_max']:.4f}")


if __name__ == "__main__":
    cli(main, one)
