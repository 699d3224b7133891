"""The two worked examples of docs/development.md, run for real: a model and a per-video stage, each
registered only inside its test. The guide quotes the blocks between the ``# [doc: ...]`` markers below
word for word (tests/test_docs.py holds that), so the guide cannot drift from code that runs.
"""

import types

import dagster as dg
import polars as pl

from fvc_assets.train import fold_training
from fvc_assets.train.models import registry
from fvc_core.train_settings import DEMO_SETTINGS
from tests.train_data import synthetic_catalog

# [doc: model module]
# fvc_assets/train/models/l1_logistic.py
from fvc_assets.train.models.feature_model import FeatureModel


class L1LogisticModel(FeatureModel):
    """Sparse (L1) logistic regression on the 23 features, after the feature models' shared preprocessing.
    Linear, so `fvc predict` explains its scores as every feature model's: coefficient x standardised value."""

    name = "l1_logistic"

    def estimator(self, labels):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(penalty="l1", C=0.5, solver="liblinear", class_weight="balanced",
                                  random_state=self.settings.seed)


def build(settings):
    return L1LogisticModel(settings)
# [end doc]


def register_l1_logistic(monkeypatch):
    """What the new file and one line in registry.py do, for the length of one test."""
    module = types.ModuleType("fvc_assets.train.models.l1_logistic")
    module.build = build
    monkeypatch.setitem(__import__("sys").modules, module.__name__, module)
    monkeypatch.setitem(
        registry.MODELS, "l1_logistic",
        # [doc: model spec]
        registry.ModelSpec("l1_logistic", "l1_logistic", "features", "sparse (L1) logistic regression on the 23 features"),
        # [end doc]
    )


def test_a_new_model_trains_and_scores_through_the_fold_path(monkeypatch, tmp_path):
    register_l1_logistic(monkeypatch)
    catalog, folds = synthetic_catalog()
    # [doc: model fold]
    outcome = fold_training.train_fold("l1_logistic", 0, catalog, folds, DEMO_SETTINGS, root=tmp_path,
                                       workdir=tmp_path / "train" / "l1_logistic" / "fold_0",
                                       frames_cache=tmp_path / "frames_cache", train_dir=tmp_path / "train")
    assert outcome.metrics["roc_auc"] > 0.9  # the synthetic fakes are shifted in three features
    # [end doc]
    held_out = set(folds.filter(pl.col("fold") == 0)["video_id"].to_list())
    originals = outcome.predictions.filter(pl.col("augmentation") == "original")
    assert sorted(originals["video_id"].to_list()) == sorted(held_out)  # one score per held-out video
    written = {p.name for p in (tmp_path / "train" / "l1_logistic" / "fold_0").iterdir()}
    assert {"predictions.parquet", "metrics.parquet", "pipeline.skops", "inner_predictions.parquet"} <= written
    # A saved model scores as the fitted one: what `fvc predict` relies on.
    loaded = registry.build_model("l1_logistic", DEMO_SETTINGS)
    loaded.load(tmp_path / "train" / "l1_logistic" / "fold_0")
    clips = outcome.predictions.select("clip_id").join(catalog, on="clip_id", how="left", maintain_order="left")
    assert (abs(loaded.predict(clips) - outcome.predictions["score"].to_numpy()) < 1e-9).all()
    names, contributions = loaded.contributions(clips)  # what `fvc predict` shows beside each score
    assert contributions.shape == (clips.height, len(names)) and set(names) & {"noise_energy", "gradient_mean"}


def test_a_new_model_is_a_model_dimension_of_fold_results_when_configured(monkeypatch):
    from fvc_assets.partitions import configured_models, model_fold_partitions_of

    register_l1_logistic(monkeypatch)
    monkeypatch.delenv("FVC_MODELS", raising=False)
    # [doc: model partitions]
    monkeypatch.setenv("FVC_EXTRA_MODELS", "l1_logistic")  # or add it to DEFAULT_MODELS in registry.py
    keys = model_fold_partitions_of(configured_models()).get_partition_keys()
    assert [k for k in keys if k.keys_by_dimension["model"] == "l1_logistic"] == [
        "0|l1_logistic", "1|l1_logistic", "2|l1_logistic", "3|l1_logistic", "4|l1_logistic"]
    # [end doc]
    assert len(keys) == (8 + 1) * 5  # the eight default base models and the new one; the ensemble is apart
    monkeypatch.delenv("FVC_EXTRA_MODELS")
    assert not any(k.keys_by_dimension["model"] == "l1_logistic"
                   for k in model_fold_partitions_of(configured_models()).get_partition_keys())


# [doc: stage asset]
# fvc_assets/durations/assets.py: a per-video stage downstream of stage 1
import pandera.polars as pa

from fvc_assets.augment.assets import augmented_videos
from fvc_assets.partitions import videos_partitions
from fvc_assets.steps.per_video import over_videos
from fvc_assets.steps.sole_writer import sole_writer
from fvc_assets.steps.step_cost import reports_cost
from fvc_assets.steps.table_metadata import table_metadata
from fvc_assets.steps.upstream import require_upstream, table_version
from fvc_resources.atomic import write_parquet_atomic
from fvc_resources.storage import StorageResource

DURATIONS_COMPLETE = "durations_complete"


class ClipDurationTable(pa.DataFrameModel):  # fvc_assets/durations/schema.py
    clip_id: str = pa.Field(unique=True)
    seconds: float = pa.Field(gt=0)

    class Config:
        strict = True


def durations_path(storage: StorageResource, key: str):  # a StorageResource method in the real thing
    return storage.video_dir(key) / "clip_durations.parquet"


@dg.asset(
    partitions_def=videos_partitions,
    output_required=False,  # in a batch, @over_videos records each video's materialisation itself
    deps=[augmented_videos],
    group_name="features",  # a per-video group: video_pipeline and the inbox sensor's runs include it
    code_version="1",
    kinds={"parquet"},
    check_specs=[dg.AssetCheckSpec(DURATIONS_COMPLETE, asset="clip_durations", partitions_def=videos_partitions,
                                   blocking=True, description="One duration per clip of stage 1.")],
    description="Seconds per clip of stage 1.",
)
@over_videos  # one video, or a batch of videos one after another (fvc_assets/steps/per_video.py)
@sole_writer(lambda storage, c: [durations_path(storage, c.partition_key)])
@reports_cost
def clip_durations(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    key = context.partition_key
    clips = pl.read_parquet(require_upstream(storage.clip_table_path(key), "augmented_videos", key))
    table = ClipDurationTable.validate(clips.select("clip_id", seconds=pl.col("frames") / pl.col("fps")))
    write_parquet_atomic(durations_path(storage, key), table)
    return dg.MaterializeResult(
        metadata={**table_metadata(table), "clips": table.height},
        check_results=[dg.AssetCheckResult(check_name=DURATIONS_COMPLETE, passed=table.height == clips.height,
                                           metadata={"clips": clips.height, "rows": table.height})],
        data_version=table_version(table),  # an unchanged video re-run gives the same version: nothing downstream
    )
# [end doc]


def test_a_new_per_video_stage_materialises_with_its_check_and_joins_the_video_pipeline(tmp_path):
    from fvc_assets.ingest.assets import raw_videos
    from fvc_assets.jobs import stage_jobs, video_pipeline_job
    from tests.test_stages import checks_of, setup_video

    data = tmp_path / "data"
    key, instance, resources = setup_video(data, frames=6, width=64, height=48, fps=10)
    # [doc: stage materialise]
    result = dg.materialize([raw_videos, augmented_videos, clip_durations], instance=instance,
                            resources=resources, partition_key=key)
    assert result.success and checks_of(result)[DURATIONS_COMPLETE].passed
    # [end doc]
    table = pl.read_parquet(data / "videos" / key / "clip_durations.parquet")
    assert table.height == 11 and table["seconds"].to_list() == [0.6] * 11  # 6 frames at 10 fps, every clip
    metadata = result.asset_materializations_for_node("clip_durations")[0].metadata
    assert metadata["dagster/row_count"].value == 11 and metadata["cost/wall_s"].value > 0
    # Its group puts it in the per-video jobs the inbox sensor and `fvc run` launch, and in the stage's own job.
    # [doc: stage jobs]
    defs = dg.Definitions(assets=[raw_videos, augmented_videos, clip_durations],
                          jobs=[video_pipeline_job, *stage_jobs], resources=resources)
    for job in ("video_pipeline", "features"):
        assert dg.AssetKey("clip_durations") in defs.resolve_job_def(job).asset_layer.executable_asset_keys
    # [end doc]
