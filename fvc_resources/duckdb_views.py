"""``$FVC_DATA_DIR/fvc.duckdb``: views over the platform's parquet files, for SQL from any DuckDB client.

The database holds only views (no data), so it is rebuilt whole into a temp
file and renamed over the old one: no writer ever holds a lock that readers
or other steps would wait on, and a reader sees either the old or the new file.
A view whose files do not exist yet is an empty view with the right columns.

The file is written in DuckDB 1.0's storage format (``storage_compatibility_version``), so
every DuckDB client and driver from 1.0 on opens it, not only the version installed here.
"""

from __future__ import annotations

import time
from pathlib import Path

from fvc_resources.atomic import atomic_path

# The oldest DuckDB whose clients can open fvc.duckdb (docs/pipeline.md: "Where the results are").
STORAGE_COMPATIBILITY = "v1.0.0"

# view -> (glob relative to the data root, columns for the empty view)
VIEWS: dict[str, tuple[str, dict[str, str]]] = {
    "clips": ("catalog/video_catalog.parquet", {"clip_id": "VARCHAR", "video_id": "VARCHAR", "label": "VARCHAR",
                                                "manipulation": "VARCHAR",
                                                "dup_group": "VARCHAR"}),
    "folds": ("catalog/folds.parquet", {"video_id": "VARCHAR", "dup_group": "VARCHAR", "fold": "BIGINT"}),
    "predictions": ("train/*/fold_*/predictions.parquet",
                    {"model": "VARCHAR", "fold": "BIGINT", "clip_id": "VARCHAR", "video_id": "VARCHAR",
                     "label": "VARCHAR", "score": "DOUBLE"}),
    "metrics": ("train/*/fold_*/metrics.parquet",
                {"model": "VARCHAR", "fold": "BIGINT", "metric": "VARCHAR", "value": "DOUBLE"}),
    "manipulation_scores": ("comparison/manipulations.parquet",
                            {"model": "VARCHAR", "manipulation": "VARCHAR", "roc_auc": "DOUBLE",
                             "roc_auc_mean": "DOUBLE", "roc_auc_std": "DOUBLE"}),
    "operating_points": ("comparison/operating_points.parquet",
                         {"model": "VARCHAR", "fold": "BIGINT", "point": "VARCHAR", "threshold": "DOUBLE",
                          "tpr": "DOUBLE", "fpr": "DOUBLE", "precision": "DOUBLE"}),
    "cross_manipulation": ("comparison/cross_manipulation.parquet",
                           {"model": "VARCHAR", "manipulation": "VARCHAR", "fold": "BIGINT", "roc_auc": "DOUBLE"}),
    "comparison": ("comparison/summary.parquet", {"model": "VARCHAR", "metric": "VARCHAR", "mean": "DOUBLE",
                                                  "std": "DOUBLE"}),
}


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_sql(name: str, root: Path) -> str:
    pattern, columns = VIEWS[name]
    if any(root.glob(pattern)):
        # union_by_name: files written by different code versions may differ in optional columns
        source = f"read_parquet({_sql_string(str(root / pattern))}, union_by_name = true)"
        return f"CREATE VIEW {name} AS SELECT * FROM {source}"
    empty = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in columns.items())
    return f"CREATE VIEW {name} AS SELECT {empty} WHERE false"


# A view reads the footers of the files its glob matches when it is created. A step that retrains a fold
# removes that fold's old files first, so a file listed a moment ago can be gone: then list again. Five
# attempts were too few on a loaded machine with a fold rewritten every few milliseconds (the test's churn).
ATTEMPTS = 20


def refresh_views(root: str | Path, database: str | Path) -> Path:
    """Rebuild the views database at ``database`` for the data under ``root``."""
    import duckdb

    root, database = Path(root).absolute(), Path(database)
    with atomic_path(database) as tmp:
        tmp.unlink()  # duckdb wants to create the file itself
        with duckdb.connect(str(tmp), config={"storage_compatibility_version": STORAGE_COMPATIBILITY}) as connection:
            for name in VIEWS:
                for attempt in range(1, ATTEMPTS + 1):
                    try:
                        connection.execute(view_sql(name, root))
                        break
                    except duckdb.IOException:  # a file that another step removed between the glob and the read
                        if attempt == ATTEMPTS:
                            raise
                        time.sleep(min(0.05 * attempt, 0.2))
    return database
