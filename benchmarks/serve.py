"""`fvc serve` under load, on loopback, against `fvc predict` on the same files (measured in the same run).

    .venv/bin/python -m benchmarks.serve [DATA_DIR] [--requests N]
        (DATA_DIR: a trained data root as `make demo` leaves it, default $FVC_DATA_DIR or ./data;
         without one, a logistic regression on synthetic features stands in and the frame-model rows are skipped)

The models come from DATA_DIR's training folders, packaged as registry bundles in a scratch
registry and instance (DATA_DIR is only read). Rows:

1. Latency, one request at a time (service: 1 scoring process with 2 threads; reference: the same
   model's five fold models, loaded once, scoring the same file in-process with 2 threads, as
   `fvc predict` does per video): p50 / p95 over a few requests, for a 10 s 720p and a 60 s 1080p
   video, with the best feature model and with one frame model (x3d). Goal: service p50 <= 1.2x.
2. Throughput of the 10 s 720p video with 1, 2 and 4 concurrent clients (the default 2 scoring
   processes with 1 thread each).
3. Memory over N requests of a small video (default 1000): the RSS of the server and its scoring
   processes after the first tenth and at the end. Goal: no growth.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks._measure import cli, in_subprocess, print_table
from benchmarks.sampling import make_video

FEATURE_MODELS = ("logistic_regression", "linear_svm", "xgboost")
FRAME_MODEL = "x3d"
LATENCY_REQUESTS = {"720p_10s": 8, "1080p_60s": 3}


def trained_models(data: Path) -> list[str]:
    """The best feature model and the frame model, where every fold of each is trained under ``data``."""
    best_file = data / "comparison" / "best_model.json"
    if not best_file.exists():
        return []
    best = json.loads(best_file.read_text())["best_model"]
    feature = best if best in FEATURE_MODELS else "xgboost"
    return [m for m in (feature, FRAME_MODEL) if all((data / "train" / m / f"fold_{k}" / "model.json").exists()
                                                      for k in range(5))]


def _reference_one(spec: str) -> dict:
    """Seconds per scoring of each video by ``model``'s fold models loaded once (fvc predict's work per video)."""
    from fvc_assets.predict import FoldModels, fold_folders, score_video
    from fvc_assets.train.models.base import FitContext

    args = json.loads(spec)
    root = Path(args["root"])
    folders = fold_folders(root / "train", args["model"], root)
    with tempfile.TemporaryDirectory(dir=root) as work:
        models = FoldModels(root / "train", root, FitContext(root=root, workdir=Path(work), frames_cache=Path(work)))
        needs_frames = models.reads_frames(args["model"], [f.name for f in folders])
        out = {}
        for video, n in args["videos"].items():
            times = []
            for i in range(n + 1):  # the first one warms caches and loads the models: not counted
                started = time.perf_counter()
                score_video(models, args["model"], folders, Path(video), Path(work) / f"{Path(video).stem}-{i}",
                            needs_frames)
                times.append(time.perf_counter() - started)
            out[video] = times[1:]
    return out


def one(what: str, arg: str, n: int) -> dict:
    return _reference_one(arg)


def scratch_registry(source: Path, base: Path, models: list[str]) -> tuple[Path, Path, dict[str, str]]:
    """An instance folder and data root under ``base`` whose registry holds a bundle of each model;
    returns (home, data, model -> registry version)."""
    import polars as pl

    from fvc_assets.promote.bundle import Candidate, write_bundle
    from fvc_resources.model_registry import ModelRegistry
    from fvc_resources.tracking import embedded_store

    home, data = base / "dagster_home", base / "data"
    home.mkdir(parents=True)
    data.mkdir(parents=True)
    registry = ModelRegistry(*embedded_store(home))
    versions = {}
    folds_file = source / "catalog" / "folds.parquet"
    best_file = source / "comparison" / "best_model.json"
    thresholds = json.loads(best_file.read_text()).get("thresholds", {}) if best_file.exists() else {}
    folds = pl.read_parquet(folds_file) if folds_file.exists() else pl.DataFrame(
        {"video_id": ["v"], "label": ["real"], "fold": [0]})
    for model in models:
        candidate = Candidate(model, float("nan"), "benchmark", {}, "benchmark")
        bundle, manifest = write_bundle(data / "deployed", source / "train", candidate, control={},
                                        thresholds=thresholds.get(model, {}), folds=folds, code="benchmark",
                                        scaled_by=["letterbox"])
        versions[model] = registry.register(bundle, manifest.digest, {"model": model}, "benchmark").version
    return home, data, versions


def synthetic_source(base: Path) -> Path:
    """A data root with a logistic regression trained on synthetic features (when no trained root is given)."""
    from tests.serve_fixtures import train_folds

    root = base / "synthetic"
    train_folds(root)
    return root


class Service:
    def __init__(self, home: Path, data: Path, folder: Path, **settings):
        from tests.serve_fixtures import start_server

        self.server = start_server(home, data, folder, **settings)
        self.server.wait_ready(timeout=300)

    def post(self, session, video: Path) -> float:
        started = time.perf_counter()
        reply = session.post(f"{self.server.url}/v1/score", params={"name": video.name}, data=video.read_bytes(),
                             headers=self.server.auth, timeout=900)
        if reply.status_code != 200:
            raise SystemExit(f"the service answered {reply.status_code}: {reply.text}")
        return time.perf_counter() - started

    def rss_mb(self) -> tuple[float, float]:
        """(server, scoring processes together) resident MB."""
        import psutil

        server = psutil.Process(self.server.process.pid)
        workers = [psutil.Process(pid) for pid in self.server.worker_pids()]
        return server.memory_info().rss / 2**20, sum(w.memory_info().rss for w in workers) / 2**20

    def stop(self) -> None:
        self.server.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_rows(home, data, base, models, versions, source, videos) -> list[list[str]]:
    import requests

    rows = []
    for model in models:
        reference = in_subprocess("benchmarks.serve", "reference", json.dumps(
            {"root": str(source), "model": model, "videos": {str(v): LATENCY_REQUESTS[k] for k, v in videos.items()}}),
            "0")
        service = Service(home, data, Path(tempfile.mkdtemp(dir=base)), workers=1, threads_per_worker=2,
                          model_version=versions[model], max_duration_s=600, max_upload_mb=2048,
                          request_timeout_s=1800)
        try:
            with requests.Session() as session:
                for name, video in videos.items():
                    service.post(session, video)  # warm-up, as the reference's first
                    times = [service.post(session, video) for _ in range(LATENCY_REQUESTS[name])]
                    server_mb, workers_mb = service.rss_mb()
                    ref = reference[str(video)]
                    rows.append([f"{model}, {name}", f"{statistics.median(times):.2f}", f"{percentile(times, 0.95):.2f}",
                                 f"{statistics.median(ref):.2f}", f"{statistics.median(times) / statistics.median(ref):.2f}",
                                 f"{server_mb:.0f} + {workers_mb:.0f}"])
        finally:
            service.stop()
    return rows


def throughput_rows(home, data, base, model, versions, video) -> list[list[str]]:
    import requests

    service = Service(home, data, Path(tempfile.mkdtemp(dir=base)), model_version=versions[model], workers=2,
                      threads_per_worker=1, queue_size=8, max_duration_s=600, request_timeout_s=1800)
    rows = []
    try:
        with requests.Session() as warm:
            service.post(warm, video)
            service.post(warm, video)
        for clients in (1, 2, 4):
            per_client = 4
            def client():
                with requests.Session() as session:
                    for _ in range(per_client):
                        service.post(session, video)
            threads = [threading.Thread(target=client) for _ in range(clients)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            seconds = time.perf_counter() - started
            rows.append([f"{clients}", f"{clients * per_client}", f"{seconds:.1f}",
                         f"{clients * per_client / seconds:.2f}"])
    finally:
        service.stop()
    return rows


def memory_rows(home, data, base, model, versions, video, requests_count: int) -> list[list[str]]:
    import requests

    service = Service(home, data, Path(tempfile.mkdtemp(dir=base)), model_version=versions[model], workers=2,
                      threads_per_worker=1)
    try:
        with requests.Session() as session:
            early = max(1, requests_count // 10)
            for _ in range(early):
                service.post(session, video)
            first = service.rss_mb()
            started = time.perf_counter()
            for _ in range(requests_count - early):
                service.post(session, video)
            seconds = time.perf_counter() - started
            last = service.rss_mb()
    finally:
        service.stop()
    return [[f"after {early} requests", f"{first[0]:.1f}", f"{first[1]:.1f}", ""],
            [f"after {requests_count} requests", f"{last[0]:.1f}", f"{last[1]:.1f}",
             f"{(requests_count - early) / seconds:.1f}"],
            ["growth", f"{last[0] - first[0]:+.1f}", f"{last[1] - first[1]:+.1f}", ""]]


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.serve")
    parser.add_argument("data", nargs="?", default=os.environ.get("FVC_DATA_DIR", "data"))
    parser.add_argument("--requests", type=int, default=1000, help="requests of the memory row (default 1000)")
    args = parser.parse_args(sys.argv[1:])
    videos = {"720p_10s": make_video("720p_10s", "1280x720", 10, "3M"),
              "1080p_60s": make_video("1080p_60s", "1920x1080", 60, "6M")}
    small = make_video("240p_2s", "320x240", 2, "300k")
    with tempfile.TemporaryDirectory(prefix="fvc-bench-serve-") as scratch:
        base = Path(scratch)
        source = Path(args.data).absolute()
        models = trained_models(source)
        if not models:
            print(f"no trained data root at {source}: a logistic regression on synthetic features stands in, and "
                  "the frame-model rows are skipped (run `make demo` first for them)\n")
            source, models = synthetic_source(base), ["logistic_regression"]
        home, data, versions = scratch_registry(source, base, models)
        latency = latency_rows(home, data, base, models, versions, source, videos)
        throughput = throughput_rows(home, data, base, models[0], versions, videos["720p_10s"])
        memory = memory_rows(home, data, base, models[0], versions, small, args.requests)
    print("Latency of one request (service: 1 scoring process, 2 threads; reference: the fold models loaded once, "
          "scoring the same file in-process, as fvc predict does per video; goal <= 1.2x)\n")
    print_table(["model, video", "p50 s", "p95 s", "predict s", "x predict", "RSS MB server + worker"], latency)
    print(f"\nThroughput, {models[0]}, 720p 10 s, the default 2 scoring processes of 1 thread\n")
    print_table(["clients", "requests", "seconds", "videos/s"], throughput)
    print(f"\nMemory over {args.requests} requests of a 2 s 240p video, {models[0]} (goal: no growth)\n")
    print_table(["when", "server RSS MB", "scoring processes RSS MB", "requests/s"], memory)


if __name__ == "__main__":
    cli(main, one)
