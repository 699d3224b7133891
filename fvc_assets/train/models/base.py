"""What every model offers the fold trainer: fit, predict, save, load."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import polars as pl

from fvc_core.train_settings import TrainSettings


@dataclass
class FitContext:
    root: Path  # data root: clip paths in the catalog are relative to it
    workdir: Path  # this model x fold's folder (checkpoints live here)
    frames_cache: Path  # decoded-frame cache shared by every deep model and fold
    log: Callable[[str], None] = print
    info: dict = field(default_factory=dict)  # filled by fit: epochs run, resumed from, ...
    # Training curves: (metric, value, timestamp in ms, step), as MLflow keeps a metric's history.
    history: list[tuple[str, float, int, int]] = field(default_factory=list)

    def record(self, step: int, **metrics: float) -> None:
        now = int(time.time() * 1000)
        self.history.extend((name, float(value), now, int(step)) for name, value in metrics.items())


class TrainableModel(Protocol):
    name: str
    settings: TrainSettings

    def fit(self, train: pl.DataFrame, context: FitContext) -> None: ...

    def predict(self, clips: pl.DataFrame, context: FitContext) -> np.ndarray: ...

    def save(self, folder: Path) -> None: ...

    def load(self, folder: Path) -> None: ...
