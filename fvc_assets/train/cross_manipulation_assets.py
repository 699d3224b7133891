"""``cross_manipulation``: each model judged on a manipulation family it never trained on."""

import polars as pl
from pydantic import Field

import dagster as dg
from fvc_assets.partitions import BASE_MODELS, FOLDS
from fvc_assets.steps.sole_writer import sole_writer
from fvc_assets.steps.step_cost import reports_cost
from fvc_assets.steps.table_metadata import table_metadata
from fvc_assets.train.catalog_assets import video_catalog
from fvc_assets.train.comparison import manipulation_scores, markdown
from fvc_assets.train.comparison_assets import read_all
from fvc_assets.train.cross_manipulation import cross_manipulation as leave_one_family_out
from fvc_assets.train.cross_manipulation import families, summarize_cross
from fvc_assets.train.fold_training import PREDICTIONS, LeakingSplit
from fvc_assets.train.folds_assets import folds
from fvc_assets.train.training_assets import fold_results
from fvc_assets.steps.upstream import require_upstream
from fvc_resources.atomic import write_parquet_atomic
from fvc_resources.duckdb_views import refresh_views
from fvc_resources.storage import StorageResource
from fvc_resources.training import TrainingResource

CROSS = "cross_manipulation.parquet"
# The feature models and one frame model: what the demo can afford (4 families x 5 folds each).
DEFAULT_CROSS_MODELS = ("logistic_regression", "linear_svm", "xgboost", "naive_cnn")


class CrossManipulationConfig(dg.Config):
    models: list[str] = Field(
        default_factory=lambda: [m for m in DEFAULT_CROSS_MODELS if m in BASE_MODELS],
        description="base models to train once per held-out family and fold")


@dg.asset(
    deps=[video_catalog, folds, dg.AssetDep(fold_results, partition_mapping=dg.AllPartitionMapping())],
    group_name="train",
    code_version="1",
    kinds={"python", "parquet"},
    tags={"fvc/stage": "5"},
    description=(
        "Leave one manipulation family out: for each family and fold, each chosen model trains on the training "
        "folds without that family's fakes and scores the held-out fold's fakes of the family against its real "
        "videos. Mean ± std over folds beside the in-family score (fold_results, trained with every family). "
        "Same folds and leakage audit as fold_results. DuckDB view `cross_manipulation`."
    ),
)
@sole_writer(lambda storage, c: [storage.comparison_dir / CROSS, storage.train_dir / "cross_manipulation"])
@reports_cost
def cross_manipulation(context: dg.AssetExecutionContext, config: CrossManipulationConfig,
                       storage: StorageResource, training: TrainingResource) -> dg.MaterializeResult:
    unknown = [m for m in config.models if m not in BASE_MODELS]
    if unknown:
        raise dg.Failure(description=f"cross_manipulation: {', '.join(unknown)} not among the base models "
                                     f"({', '.join(BASE_MODELS)})")
    catalog = pl.read_parquet(require_upstream(storage.catalog_path, "video_catalog", "all videos"))
    split = pl.read_parquet(require_upstream(storage.folds_path, "folds", "all videos"))
    found = families(catalog)
    try:
        cross = leave_one_family_out(
            config.models, catalog, split, training.settings(), root=storage.root,
            workdir=storage.train_dir / "cross_manipulation", frames_cache=storage.frames_cache_dir,
            n_folds=len(FOLDS), log=context.log.info)
    except LeakingSplit as exc:
        raise dg.Failure(description=str(exc)) from exc
    predictions = read_all(storage, PREDICTIONS)
    in_family = manipulation_scores(predictions, catalog) if predictions is not None else None
    table = summarize_cross(cross, in_family)
    write_parquet_atomic(storage.comparison_dir / CROSS, cross)
    refresh_views(storage.root, storage.duckdb_path)
    shown = markdown(table) if table.height else (
        "no manipulation families in the manifests (a `manipulation` column names each fake's family)")
    context.log.info("\n" + shown)
    return dg.MaterializeResult(metadata={
        **table_metadata(cross),
        "families": ", ".join(found) or "none",
        "models": ", ".join(config.models),
        "unseen_vs_in_family": dg.MetadataValue.md(shown),
        "output": dg.MetadataValue.path(str(storage.comparison_dir / CROSS)),
    })
