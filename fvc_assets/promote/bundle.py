"""A model bundle: what scoring needs of one model, in one folder, with a manifest of where it came from.

Layout::

    bundle.json                   model, digest, scores, control, thresholds, data and code fingerprints
    models/<model>/fold_<k>/      each fold model's files (and each ensemble member's), as training wrote them

Training state (checkpoints) and held-out predictions stay behind: a bundle is for scoring. Its
``digest`` covers every file's bytes and the thresholds, so the same model trained on the same data
gives the same digest, and anything else a new one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from fvc_assets.train.folds import N_FOLDS
from fvc_assets.train.models.ensemble import MODEL_FILE as ENSEMBLE_FILE

MANIFEST = "bundle.json"
MODELS_DIR = "models"
LEFT_BEHIND = ("checkpoint.pt",)  # training state: resuming, not scoring
LEFT_BEHIND_SUFFIX = "predictions.parquet"  # held-out, inner and average predictions of the training run


@dataclass(frozen=True)
class Candidate:
    """The model the comparison picked, with the score it is judged by."""

    model: str
    score: float  # the honest estimate: the nested ROC-AUC when there is one, else the model's mean
    score_kind: str  # "nested" | "mean over folds"
    fold_roc_auc: dict[str, float]  # fold -> the model's own ROC-AUC on that held-out fold
    picked_by: str


@dataclass
class Manifest:
    model: str
    members: list[str]
    digest: str
    score: float
    score_kind: str
    fold_roc_auc: dict[str, float]
    picked_by: str
    control: dict[str, float]
    thresholds: dict[str, float]
    folds_fingerprint: str
    videos: int
    code_version: str
    scaled_by: list[str] = field(default_factory=list)  # stage 3's methods in the training catalog
    data_fingerprint: str = ""  # the training catalog's and folds' bytes: the data the fold models learned from
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @classmethod
    def read(cls, bundle: Path) -> "Manifest":
        return cls(**json.loads((bundle / MANIFEST).read_text()))


def choose_candidate(best: dict, metrics: pl.DataFrame) -> Candidate:
    """The nested pick (the selection procedure run on every fold, judged by its nested estimate) when the
    comparison has one, else the best model by mean ROC-AUC."""
    nested = best.get("nested") or {}
    if nested.get("naive_pick") and nested.get("nested_roc_auc") is not None:
        model, score = nested["naive_pick"], float(nested["nested_roc_auc"])
        kind, picked_by = "nested", f"inner CV over {', '.join(nested.get('candidates', []))}"
    elif best.get("best_model"):
        model, kind, picked_by = best["best_model"], "mean over folds", "best mean ROC-AUC (no nested selection)"
        score = float("nan")
    else:
        raise ValueError("the comparison picked no model (no model has a ROC-AUC)")
    rows = metrics.filter((pl.col("model") == model) & (pl.col("metric") == "roc_auc")).sort("fold")
    folds = {str(f): float(v) for f, v in rows.select("fold", "value").iter_rows()}
    if kind != "nested":
        score = float(sum(folds.values()) / len(folds)) if folds else float("nan")
    return Candidate(model, score, kind, folds, picked_by)


def ensemble_members(train_dir: Path, model: str) -> list[str]:
    members: set[str] = set()
    for k in range(N_FOLDS):
        saved = train_dir / model / f"fold_{k}" / ENSEMBLE_FILE
        if saved.exists():
            members.update(json.loads(saved.read_text()).get("members", []))
    return sorted(members)


def folds_fingerprint(folds: pl.DataFrame) -> str:
    """Which video is in which fold with which label: two scores are comparable fold by fold only when equal."""
    rows = folds.select("video_id", "label", "fold").sort("video_id").write_csv()
    return hashlib.sha256(rows.encode()).hexdigest()[:16]


def _add_file(digest, path: Path) -> None:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)


def data_fingerprint(*files: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        _add_file(digest, path)
    return digest.hexdigest()[:16]


def code_version(project_root: Path) -> str:
    """The package version and, in a git checkout, its commit (with "+dirty" for uncommitted changes)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("fvc-platform")
    except PackageNotFoundError:
        text = "unknown"
    try:
        commit = subprocess.run(["git", "-C", str(project_root), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(project_root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        text += f"+g{commit}" + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return text


def _kept(path: Path) -> bool:
    return path.name not in LEFT_BEHIND and not path.name.endswith(LEFT_BEHIND_SUFFIX)


def bundle_digest(bundle: Path) -> str:
    digest = hashlib.sha256()
    models = bundle / MODELS_DIR
    for path in sorted(p for p in models.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(models)).encode() + b"\0")
        _add_file(digest, path)
    return digest.hexdigest()


def write_bundle(out_dir: Path, train_dir: Path, candidate: Candidate, *, control: dict, thresholds: dict,
                 folds: pl.DataFrame, code: str, scaled_by: list[str], data: str = "") -> tuple[Path, Manifest]:
    """The candidate's bundle under ``out_dir/<digest prefix>/`` (reused when it is already there)."""
    members = ensemble_members(train_dir, candidate.model)
    staging = out_dir / f".staging-{uuid.uuid4().hex}"
    try:
        for model in [candidate.model, *members]:
            for k in range(N_FOLDS):
                source = train_dir / model / f"fold_{k}"
                if not (source / "model.json").exists():
                    raise FileNotFoundError(f"{model} is not trained on fold {k} ({source})")
                target = staging / MODELS_DIR / model / f"fold_{k}"
                target.mkdir(parents=True)
                for path in sorted(source.iterdir()):
                    if path.is_file() and _kept(path):
                        shutil.copy2(path, target / path.name)
        thresholds_digest = hashlib.sha256(json.dumps(thresholds, sort_keys=True).encode()).hexdigest()
        digest = hashlib.sha256((bundle_digest(staging) + thresholds_digest).encode()).hexdigest()[:16]
        manifest = Manifest(model=candidate.model, members=members, digest=digest, score=candidate.score,
                            score_kind=candidate.score_kind, fold_roc_auc=candidate.fold_roc_auc,
                            picked_by=candidate.picked_by, control=control, thresholds=thresholds,
                            folds_fingerprint=folds_fingerprint(folds), videos=folds.height, code_version=code,
                            scaled_by=sorted(scaled_by), data_fingerprint=data)
        (staging / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2, sort_keys=True))
        final = out_dir / digest
        if final.exists():  # the same model on the same data: keep the first copy and its manifest
            return final, Manifest.read(final)
        staging.rename(final)
        return final, manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)
