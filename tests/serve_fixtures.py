"""A data root with a champion in a real MLflow registry, and a real ``fvc serve`` process over it.

The champion is a logistic regression trained on synthetic features (five folds, seconds to fit):
the service's behaviour does not depend on what the model learned.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl
import requests

from fvc_assets.promote.bundle import Candidate, write_bundle
from fvc_assets.train.models.base import FitContext
from fvc_assets.train.models.registry import build_model
from fvc_core.train_settings import DEMO_SETTINGS
from fvc_resources.model_registry import ModelRegistry
from fvc_resources.tracking import embedded_store
from tests.conftest import free_port
from tests.train_data import synthetic_catalog

FVC = [sys.executable, "-m", "fvc_assets.cli"]
THRESHOLDS = {"fpr_1": 0.99, "fpr_5": 0.5, "top_10": 0.7}


def train_folds(root: Path, model: str = "logistic_regression") -> pl.DataFrame:
    """Five fold models of ``model`` under root/train, as fold_results writes them; returns the folds."""
    catalog, folds = synthetic_catalog(n_groups=20)
    for k in range(5):
        train = catalog.join(folds.filter(pl.col("fold") != k).select("video_id"), on="video_id")
        folder = root / "train" / model / f"fold_{k}"
        folder.mkdir(parents=True)
        fitted = build_model(model, DEMO_SETTINGS)
        fitted.fit(train, FitContext(root=root, workdir=folder, frames_cache=root / "cache"))
        fitted.save(folder)
        (folder / "model.json").write_text(json.dumps({"model": model, "fold": k, "settings": asdict(DEMO_SETTINGS)}))
    return folds


def register_bundle(root: Path, registry: ModelRegistry, folds: pl.DataFrame, thresholds: dict,
                    model: str = "logistic_regression", score: float = 0.9):
    """A bundle of the trained folds as a registry version (the asset's tags included); returns the version."""
    candidate = Candidate(model, score, "nested", {str(k): score for k in range(5)}, "test")
    bundle, manifest = write_bundle(root / "deployed", root / "train", candidate,
                                    control={"mean_roc_auc": 0.5, "std_roc_auc": 0.1}, thresholds=thresholds,
                                    folds=folds, code="test", scaled_by=["letterbox"])
    return registry.register(bundle, manifest.digest, tags={"model": model, "score": str(score),
                                                            "manifest": (bundle / "bundle.json").read_text()},
                             description="test")


def registry_of(home: Path) -> ModelRegistry:
    uri, artifacts = embedded_store(home)
    return ModelRegistry(uri, artifacts)


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    token: str
    data: Path
    log: Path

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def wait_ready(self, timeout: float = 90.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"fvc serve ended ({self.process.returncode}): {self.log.read_text()[-3000:]}")
            try:
                reply = requests.get(f"{self.url}/ready", timeout=2)
                if reply.status_code == 200:
                    return reply.json()
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"fvc serve not ready in {timeout} s: {self.log.read_text()[-3000:]}")

    def worker_pids(self) -> list[int]:
        import psutil

        pids = []
        for child in psutil.Process(self.process.pid).children():
            try:  # a killed process the server has not reaped yet is no worker
                if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                    pids.append(child.pid)
            except psutil.Error:
                continue
        return pids

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(home: Path, data: Path, folder: Path, **settings) -> Server:
    token = secrets.token_hex(16)
    token_file = folder / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    port = free_port()
    config = {"token_file": str(token_file), "port": port, **settings}
    (folder / "serve.yaml").write_text(json.dumps(config))  # JSON is YAML
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_PG_", "MLFLOW_"))}
    env.update(DAGSTER_HOME=str(home), FVC_DATA_DIR=str(data))
    log = folder / "serve.log"
    process = subprocess.Popen([*FVC, "serve", "--config", str(folder / "serve.yaml")], env=env,
                               stdout=open(log, "w"), stderr=subprocess.STDOUT)
    return Server(process, f"http://127.0.0.1:{port}", token, data, log)
