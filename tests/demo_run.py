"""One local ``fvc run`` of the demo corpus for the session, shared by the training end-to-end
tests and the cluster test (which compares its outputs with this run's, byte for byte).

In process on one machine, sqlite instance, the embedded MLflow store. The fixture keeps a
copy of what the cluster test compares (per-video feature files, per-fold metrics) taken
right after the run, because the training tests go on to add videos and retrain.
"""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

FVC = [sys.executable, "-m", "fvc_assets.cli"]
# Ten sources (seed 0: five fake, five real), the fewest whose five folds each hold both labels, and the
# default third of near-duplicates. (With two near-duplicates, `--videos 12 --duplicates 2`, the smoke
# profile's x3d scored one fold's held-out clips all alike, and its model_not_collapsed check failed.)
VIDEOS = 14
SEED = 0
# One model of each kind (the others are tested on their own in test_deep_models /
# test_feature_models), and both deterministic linear models, which the cluster test compares.
MODELS = ["logistic_regression", "linear_svm", "xgboost", "naive_cnn", "x3d", "ensemble"]
FEATURE_FILES = ("handcrafted_features.parquet", "scaled_features.parquet")
# The demo corpus at a quarter of its frame sides and at most 12 frames a video: the same labels,
# groups, families and codecs, and stage 1 about 15 times cheaper. The tests check behaviour, not scale.
SMALL_SCALE, SMALL_MAX_FRAMES = 0.25, 12
SMALL = ("--scale", str(SMALL_SCALE), "--max-frames", str(SMALL_MAX_FRAMES))


@dataclass(frozen=True)
class DemoRun:
    home: Path
    data: Path
    env: dict[str, str]
    run: subprocess.CompletedProcess
    inbox: Path  # the corpus as written, untouched
    reference: Path  # videos/<key>/<feature file> and train/<model>/fold_<k>/metrics.parquet, as the run left them


def write_demo_corpus(inbox: Path, env: dict[str, str]) -> None:
    subprocess.run([*FVC, "demo-corpus", "--out", str(inbox), "--videos", str(VIDEOS), "--seed", str(SEED), *SMALL],
                   env=env, check=True, capture_output=True)


def keep_reference(data: Path, reference: Path) -> None:
    for path in [*(data / "videos").glob("*/*.parquet"), *(data / "train").glob("*/fold_*/metrics.parquet")]:
        if path.parent.parent.name == "videos" and path.name not in FEATURE_FILES:
            continue
        target = reference / path.relative_to(data)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def fvc_env(**values: str) -> dict[str, str]:
    """This process's environment without another instance's PostgreSQL or MLflow settings, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_PG_", "MLFLOW_"))}
    return {**env, **values}


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> Path:
    """The session's demo corpus as written (read only: runs copy it into their own inbox)."""
    root = tmp_path_factory.mktemp("demo-corpus")
    write_demo_corpus(root / "corpus", fvc_env(DAGSTER_HOME=str(root / "dagster_home"), FVC_DATA_DIR=str(root / "data")))
    return root / "corpus"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, demo_corpus) -> DemoRun:
    root = tmp_path_factory.mktemp("demo-run")
    home, data = root / "dagster_home", root / "data"
    env = fvc_env(DAGSTER_HOME=str(home), FVC_DATA_DIR=str(data), FVC_MODELS=" ".join(MODELS),
                  FVC_EXECUTOR="in_process")
    shutil.copytree(demo_corpus, data / "inbox")
    run = subprocess.run([*FVC, "run", "--jobs", "2"], env=env, capture_output=True, text=True, timeout=1500)
    keep_reference(data, root / "reference")
    return DemoRun(home, data, env, run, demo_corpus, root / "reference")
