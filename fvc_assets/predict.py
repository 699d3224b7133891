"""``fvc predict``: P(fake) for videos outside the training partitions.

Each video goes through the pipeline's own feature code: the 15 stage-2 features
of the file itself and the 8 stage-4 features of the same sampled frames resized
as stage 3 resizes, in one sampling pass; a frame model also gets the 256-pixel
clip stage 3 would write, scaled from the file, in a work folder under
``$FVC_DATA_DIR/predict/<content hash>/``. Input files are only read. It is then scored by the five fold models of one
model (the best by mean ROC-AUC unless one is named), and the five scores are
averaged, their spread beside the mean. For a feature model each score comes
with the features that pushed it most (their contributions to the log-odds).
Model files are loaded only from the data root.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from fvc_assets.features.extract import source_and_scaled_features
from fvc_core.sampling import frames_to_sample
from fvc_assets.ingest.registration import file_sha256
from fvc_assets.scale.letterbox import scale_clip
from fvc_assets.train.fold_training import MODEL_INFO
from fvc_assets.train.folds import N_FOLDS
from fvc_assets.train.models.base import FitContext
from fvc_assets.train.models.registry import build_model, spec
from fvc_core.train_settings import TrainSettings
from fvc_resources.video import VideoError

SCALE_TARGET = 256


TOP_FEATURES = 3  # shown in the table; the JSON has every kept feature


@dataclass
class Prediction:
    path: str
    probability_fake: float | None  # mean of the fold models' scores
    model: str
    folds: int
    error: str = ""
    fold_scores: list[float] = field(default_factory=list)
    spread: float | None = None  # standard deviation of the fold models' scores
    # Feature models: what pushed the score, most first: feature, value, contribution to the log-odds of
    # 'fake' (mean over the fold models; XGBoost's own contributions, or coefficient x standardised value).
    reasons: list[dict] = field(default_factory=list)
    # The decision at an operating point whose threshold the comparison fixed on held-out scores.
    operating_point: str = ""
    threshold: float | None = None
    decision: str = ""


def decide(predictions: list[Prediction], thresholds: dict[str, float] | None, point: str) -> None:
    """Fill each scored prediction's decision at ``point`` (thresholds as model_comparison wrote them)."""
    from fvc_assets.train.operating_points import describe_point

    threshold = (thresholds or {}).get(point)
    for p in predictions:
        if p.probability_fake is None:
            continue
        p.operating_point = point
        if threshold is None or np.isnan(threshold):
            p.decision = f"no threshold for {point} (run model_comparison again)"
            continue
        p.threshold = float(threshold)
        p.decision = describe_point(point) if p.probability_fake >= threshold else "no flag"


def _count(frames: int) -> int:
    return frames_to_sample(frames, 0.10, 5, 50)  # FrameSamplingResource's defaults


def prepare_video(path: Path, root: Path, work_dir: Path, with_clip: bool = False) -> pl.DataFrame:
    """One catalog-like row for the video at ``path``: its 15 stage-2 and 8 stage-4 features from one
    sampling pass over the file; with ``with_clip`` (frame models) also the 256-pixel clip, scaled
    from the file as stage 3 scales (``scaled_path``, relative to ``root``)."""
    video_id = "predict_" + work_dir.name
    handcrafted, scaled = source_and_scaled_features(path, _count, SCALE_TARGET)
    handcrafted.pop("frames_sampled")
    row = {"clip_id": f"{video_id}__original", "video_id": video_id, "augmentation": "original",
           "label": "unknown", **handcrafted, **scaled, "scaled_path": ""}
    if with_clip:
        scaled_path = work_dir / "scaled" / "original.mp4"
        if not scaled_path.exists():  # the work folder is named by the file's content hash
            scale_clip(path, scaled_path, SCALE_TARGET)
        row["scaled_path"] = str(scaled_path.relative_to(root))
    return pl.DataFrame([row])


def require_inside(folder: Path, root: Path) -> None:
    """The folder and every file in it resolve inside the data root (no symlink leads elsewhere)."""
    for path in [folder, *folder.iterdir()]:
        if not path.resolve().is_relative_to(root.resolve()):
            raise PermissionError(f"{path}: refusing to load a model file from outside the data root {root}")


def fold_folders(train_dir: Path, model: str, root: Path) -> list[Path]:
    """The five fold folders of ``model``; every file in them must resolve inside the data root."""
    folders = [train_dir / model / f"fold_{k}" for k in range(N_FOLDS)]
    missing = [str(f) for f in folders if not (f / MODEL_INFO).exists()]
    if missing:
        raise SystemExit(f"{model!r} is not trained on every fold (missing {', '.join(missing)}): run `fvc run`")
    for folder in folders:
        require_inside(folder, root)
    return folders


def check_catalog_matches(root: Path) -> None:
    """predict re-creates clips the letterbox way; a catalog scaled by the autoencoder needs that path too."""
    catalog = root / "catalog" / "video_catalog.parquet"
    if catalog.exists():
        methods = set(pl.read_parquet(catalog, columns=["method"])["method"].unique().to_list())
        if methods - {"letterbox"}:
            raise SystemExit(f"the models were trained on clips scaled by {sorted(methods)}; fvc predict scales "
                             "by letterbox only, so its scores would not be comparable")


def load_fold_model(folder: Path, name: str, allow_pickle: bool = False):
    """A trained fold model; pickled model files (older versions) only with ``allow_pickle``."""
    from fvc_assets.train.models.feature_model import FeatureModel

    settings = TrainSettings.from_saved(json.loads((folder / MODEL_INFO).read_text())["settings"])
    model = build_model(name, settings)
    if isinstance(model, FeatureModel):
        model.load(folder, allow_pickle=allow_pickle)
    else:
        model.load(folder)  # torch weights_only / JSON: no code runs on load
    return model


class FoldModels:
    """Each fold model loaded once for all videos (ensemble members too), only from inside the data root."""

    def __init__(self, train_dir: Path, root: Path, context: FitContext, allow_pickle: bool = False):
        self.train_dir, self.root, self.context = train_dir, root, context
        self.allow_pickle = allow_pickle
        self._loaded: dict[tuple[str, str], object] = {}

    def model(self, name: str, fold: str):
        if (name, fold) not in self._loaded:
            folder = self.train_dir / name / fold
            require_inside(folder, self.root)
            self._loaded[(name, fold)] = load_fold_model(folder, name, self.allow_pickle)
        return self._loaded[(name, fold)]

    def reads_frames(self, name: str, folds: list[str]) -> bool:
        """Does scoring with ``name`` read a clip's frames (a frame model, or an ensemble with one)?"""
        if spec(name).inputs == "frames":
            return True
        if spec(name).inputs == "scores":
            return any(self.reads_frames(member, folds) for fold in folds for member in self.model(name, fold).members)
        return False

    def reasons(self, name: str, folds: list[str], row: pl.DataFrame) -> list[dict]:
        """Each kept feature's contribution to the log-odds, averaged over the fold models, largest first
        (empty for models that do not read the features)."""
        from fvc_assets.train.models.feature_model import FeatureModel

        totals: dict[str, list[float]] = {}
        for fold in folds:
            model = self.model(name, fold)
            if not isinstance(model, FeatureModel):
                return []
            names, contributions = model.contributions(row)
            for feature, value in zip(names, contributions[0]):
                totals.setdefault(feature, []).append(float(value))
        mean = {f: float(np.sum(v)) / len(folds) for f, v in totals.items()}  # a dropped feature adds 0
        return [{"feature": f, "value": float(row[f][0]), "contribution": round(c, 4)}
                for f, c in sorted(mean.items(), key=lambda item: -abs(item[1]))]

    def score(self, name: str, fold: str, row: pl.DataFrame) -> float:
        model = self.model(name, fold)
        if spec(name).inputs == "scores":
            members = np.array([[self.score(m, fold, row) for m in model.members]])
            return float(model.predict_scores(members)[0])
        return float(model.predict(row, self.context)[0])


def score_video(models: FoldModels, model: str, folders: list[Path], path: Path, work_dir: Path,
                needs_frames: bool, shown_as: str | None = None) -> Prediction:
    """One video scored by every fold model of ``model`` (its clip, when needed, written under ``work_dir``)."""
    row = prepare_video(path, models.root, work_dir, with_clip=needs_frames)
    scores = [models.score(model, folder.name, row) for folder in folders]
    return Prediction(shown_as or str(path), float(np.mean(scores)), model, len(scores), fold_scores=scores,
                      spread=float(np.std(scores)), reasons=models.reasons(model, [f.name for f in folders], row))


def predict_videos(paths: list[Path], root: Path, train_dir: Path, frames_cache: Path, predict_dir: Path,
                   model: str, on_scored: Callable[[Prediction], None] | None = None,
                   allow_pickle: bool = False) -> list[Prediction]:
    spec(model)  # unknown names fail here, with the list of known ones
    folders = fold_folders(train_dir, model, root)
    check_catalog_matches(root)
    models = FoldModels(train_dir, root, FitContext(root=root, workdir=predict_dir, frames_cache=frames_cache),
                        allow_pickle)
    needs_frames = models.reads_frames(model, [f.name for f in folders])
    out = []
    for path in paths:
        try:
            if not path.is_file():
                raise VideoError(path, "no such file")
            out.append(score_video(models, model, folders, path, predict_dir / file_sha256(path)[:16],
                                   needs_frames))
        except (VideoError, ValueError) as exc:
            out.append(Prediction(str(path), None, model, 0, str(exc)))
        if on_scored:
            on_scored(out[-1])
    return out


def as_json(predictions: list[Prediction]) -> str:
    return json.dumps([asdict(p) for p in predictions], indent=2)


def predictions_table(predictions: list[Prediction]) -> str:
    """One line per video: P(fake) ± the fold models' spread, the model, and what pushed it most."""
    width = max(len(p.path) for p in predictions)
    lines = [f"{'video'.ljust(width)}  P(fake) ± folds  model      decision  pushed most (contribution to log-odds)"]
    for p in predictions:
        if p.probability_fake is None:
            lines.append(f"{p.path.ljust(width)}  error            {p.model}  {p.error}")
            continue
        reasons = ", ".join(f"{r['feature']} {r['contribution']:+.2f}" for r in p.reasons[:TOP_FEATURES])
        decision = f"{p.decision} (threshold {p.threshold:.3f})" if p.threshold is not None else p.decision
        lines.append(f"{p.path.ljust(width)}  {p.probability_fake:.3f} ± {p.spread:.3f}   {p.model}"
                     + (f"  {decision}" if decision else "") + (f"  {reasons}" if reasons else ""))
    return "\n".join(lines)
