"""Stage 5 input — ``folds``: the leak-free, stable 5-fold split of the catalog's labelled videos."""

import polars as pl
from pydantic import Field

import dagster as dg
from fvc_assets.steps.sole_writer import sole_writer
from fvc_assets.train.catalog import trainable
from fvc_assets.train.catalog_assets import video_catalog
from fvc_assets.train.comparison import markdown
from fvc_assets.train.folds import N_FOLDS, assign_folds, audit_folds
from fvc_assets.steps.upstream import files_version
from fvc_assets.steps.table_metadata import table_metadata
from fvc_resources.atomic import write_parquet_atomic
from fvc_resources.duckdb_views import refresh_views
from fvc_resources.storage import StorageResource

NO_LEAKAGE = "no_leakage"


class FoldsConfig(dg.Config):
    seed: int = Field(default=0, description="Orders new groups before they are placed; recorded in the table.")


def previous_assignment(path, seed: int) -> dict[str, int]:
    """video -> fold of every video ever assigned with this seed (the history keeps videos that left the
    labelled set for a while, e.g. relabelled 'uncertain', so they come back to their old fold)."""
    if not path.exists():
        return {}
    previous = pl.read_parquet(path).filter(pl.col("seed") == seed)
    return dict(previous.select("video_id", "fold").iter_rows())


def merged_history(path, assignment: pl.DataFrame) -> pl.DataFrame:
    """The assignment history with this assignment's rows replacing older ones for the same video and seed."""
    current = assignment.select("video_id", "fold", "seed")
    if not path.exists():
        return current
    older = pl.read_parquet(path).join(current.select("video_id", "seed"), on=["video_id", "seed"], how="anti")
    return pl.concat([older, current]).sort("seed", "video_id")


@dg.asset(
    deps=[video_catalog],
    group_name="train",
    code_version="1",
    kinds={"parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            NO_LEAKAGE, asset="folds", blocking=True,
            description="No dup_group or source video on both sides of any fold; every clip has a fold; "
                        "each fold holds both labels.",
        ),
    ],
    description=(
        f"{N_FOLDS} folds over the labelled videos: grouped by dup_group (augmentations inherit their source's), "
        "stratified by label and platform, stable as videos are added. DuckDB view `folds`."
    ),
)
@sole_writer(lambda storage, c: [storage.folds_path, storage.folds_path.with_name("folds_history.parquet")])
def folds(context: dg.AssetExecutionContext, config: FoldsConfig, storage: StorageResource) -> dg.MaterializeResult:
    catalog = trainable(pl.read_parquet(storage.catalog_path))
    videos = catalog.unique("video_id").select("video_id", "dup_group", "label", "platform")
    history_path = storage.folds_path.with_name("folds_history.parquet")
    previous = previous_assignment(history_path, config.seed)
    assignment = assign_folds(videos, previous, N_FOLDS, config.seed).with_columns(
        pl.lit(config.seed, dtype=pl.Int64).alias("seed"))
    moved = sum(1 for v, f in assignment.select("video_id", "fold").iter_rows() if v in previous and previous[v] != f)
    kept = sum(1 for v in assignment["video_id"].to_list() if v in previous)
    write_parquet_atomic(storage.folds_path, assignment)
    write_parquet_atomic(history_path, merged_history(history_path, assignment))
    refresh_views(storage.root, storage.duckdb_path)
    report = audit_folds(catalog, assignment, N_FOLDS)
    return dg.MaterializeResult(
        metadata={
            **table_metadata(assignment),
            "videos": assignment.height,
            "groups": assignment["dup_group"].n_unique(),
            "seed": config.seed,
            "kept_from_previous": kept,
            "moved": moved,
            "per_fold": dg.MetadataValue.md(markdown(report.counts)),
            "output": dg.MetadataValue.path(str(storage.folds_path)),
        },
        # Folds over this catalog: a new catalog is new data for training, even when the split is the same.
        data_version=dg.DataVersion(files_version(storage.folds_path, storage.catalog_path)),
        check_results=[
            dg.AssetCheckResult(
                check_name=NO_LEAKAGE, passed=report.passed, severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "problems": dg.MetadataValue.json(report.problems),
                    "groups_and_clips_per_fold": dg.MetadataValue.md(markdown(report.counts)),
                },
            )
        ],
    )
