"""Where the platform keeps its data: one root, per-partition folders, atomic writes.

Layout under the data root (``data_dir``; the definitions set it from ``$FVC_DATA_DIR``)::

    inbox/                 videos (and FVC manifests) land here; never modified
    registry/<key>.json    one record per registered video (key -> file, hash)
    registry/.index.jsonl  every record, one line each (what readers load; rebuilt from the records)
    registry/.inbox_sensor/<key>  the inbox sensor added this key's partition (its run is the sensor's)
    videos/<key>/          everything derived from one video partition
        raw_video.parquet  ingest: probe, labels, groups
        preview.png        a frame, small
        clips/<name>.mp4   stage 1: the original + 10 augmentations
        clips.parquet      stage 1: the clip table (lineage)
        contact_sheet.png  stage 1: one frame per clip
        handcrafted_features.parquet  stage 2
        scaled/<name>.mp4  stage 3: each clip, longer side 256
        scaled.parquet     stage 3: sizes, method, fallbacks
        scaled_features.parquet  stage 4
    catalog/video_catalog.parquet   stage 5: one row per clip, all features (DuckDB view ``clips``)
    catalog/folds.parquet           stage 5: fold of every trainable video (view ``folds``)
    train/<model>/fold_<k>/         stage 5: model file, predictions.parquet, metrics.parquet
    train/frames_cache/             decoded frames the deep models share
    comparison/                     model_comparison: tables and plots
    predict/                        ``fvc predict``: stages run on videos outside the partitions
    fvc.duckdb                      views over the parquet files above
    locks/<asset>/<partition>.lock  one writer per asset partition (fvc_assets/steps/sole_writer.py)
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from fvc_core.keys import is_safe_key


class StorageResource(dg.ConfigurableResource):
    """The data root and the path of everything under it."""

    data_dir: str = Field(description="Root of all platform data (a relative path is taken from the "
                                      "working folder of the process that uses it).")

    inbox_settle_seconds: int = Field(
        default=5, ge=0,
        description="An inbox file is registered once it has not been modified for this long (a copy or "
                    "download still running is left alone until then).")

    @property
    def root(self) -> Path:
        return Path(self.data_dir).absolute()

    @property
    def inbox_dir(self) -> Path:
        return self.root / "inbox"

    @property
    def registry_dir(self) -> Path:
        return self.root / "registry"

    def video_dir(self, key: str) -> Path:
        # Keys are sanitised at registration; re-check so no key can escape the root.
        if not is_safe_key(key):
            raise ValueError(f"unsafe partition key {key!r}")
        return self.root / "videos" / key

    def raw_video_path(self, key: str) -> Path:
        return self.video_dir(key) / "raw_video.parquet"

    def preview_path(self, key: str) -> Path:
        return self.video_dir(key) / "preview.png"

    def clips_dir(self, key: str) -> Path:
        return self.video_dir(key) / "clips"

    def clip_table_path(self, key: str) -> Path:
        return self.video_dir(key) / "clips.parquet"

    def contact_sheet_path(self, key: str) -> Path:
        return self.video_dir(key) / "contact_sheet.png"

    def handcrafted_features_path(self, key: str) -> Path:
        return self.video_dir(key) / "handcrafted_features.parquet"

    def scaled_dir(self, key: str) -> Path:
        return self.video_dir(key) / "scaled"

    def scaled_table_path(self, key: str) -> Path:
        return self.video_dir(key) / "scaled.parquet"

    def scaled_features_path(self, key: str) -> Path:
        return self.video_dir(key) / "scaled_features.parquet"

    # -- stage 5 ----------------------------------------------------------------------------------
    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog" / "video_catalog.parquet"

    @property
    def folds_path(self) -> Path:
        return self.root / "catalog" / "folds.parquet"

    @property
    def duckdb_path(self) -> Path:
        return self.root / "fvc.duckdb"

    @property
    def train_dir(self) -> Path:
        return self.root / "train"

    def fold_dir(self, model: str, fold: int) -> Path:
        if not is_safe_key(model):
            raise ValueError(f"unsafe model name {model!r}")
        return self.train_dir / model / f"fold_{int(fold)}"

    @property
    def frames_cache_dir(self) -> Path:
        return self.train_dir / "frames_cache"

    @property
    def comparison_dir(self) -> Path:
        return self.root / "comparison"

    @property
    def predict_dir(self) -> Path:
        return self.root / "predict"
