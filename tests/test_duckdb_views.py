"""fvc.duckdb's views while other steps rewrite the files under them."""

import threading
import time

import duckdb
import polars as pl

from fvc_resources.atomic import write_parquet_atomic
from fvc_resources.duckdb_views import refresh_views


def write_fold(root, model: str, fold: int) -> None:
    folder = root / "train" / model / f"fold_{fold}"
    folder.mkdir(parents=True, exist_ok=True)
    frame = pl.DataFrame({"model": [model] * 50, "fold": [fold] * 50, "clip_id": [f"c{i}" for i in range(50)],
                          "video_id": [f"v{i}" for i in range(50)], "label": ["fake", "real"] * 25,
                          "score": [i / 50 for i in range(50)]})
    write_parquet_atomic(folder / "predictions.parquet", frame)  # as the steps write: whole or not at all


def test_views_are_rebuilt_while_a_retraining_fold_removes_and_rewrites_its_files(tmp_path):
    """A retrained fold deletes its old predictions before it writes new ones (training_assets): a refresh in
    another step that globbed the old file must list again, not fail that step."""
    for model in ("a", "b", "c"):
        for fold in range(5):
            write_fold(tmp_path, model, fold)
    stop = threading.Event()

    def retrain() -> None:
        victim = tmp_path / "train" / "b" / "fold_2" / "predictions.parquet"
        while not stop.is_set():
            victim.unlink(missing_ok=True)
            write_fold(tmp_path, "b", 2)
            time.sleep(0.002)

    churn = threading.Thread(target=retrain)
    churn.start()
    try:
        for _ in range(60):
            refresh_views(tmp_path, tmp_path / "fvc.duckdb")
    finally:
        stop.set()
        churn.join()
    with duckdb.connect(str(tmp_path / "fvc.duckdb"), read_only=True) as db:
        assert db.sql("SELECT count(DISTINCT model || fold) FROM predictions").fetchall() == [(15,)]
