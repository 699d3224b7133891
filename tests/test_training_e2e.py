"""Stage 5 end to end: ``fvc run`` on a demo corpus, then DuckDB, MLflow, Dagster records and ``fvc predict``.

A real Dagster instance, a real MLflow sqlite store, real videos. The model
list is cut to one model of each kind (the others are tested on their own in
test_deep_models / test_feature_models) to keep the suite fast on 2 cores.
"""

import json
import os
import subprocess
import sys

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest

from fvc_assets.train.catalog import FEATURE_COLUMNS
from fvc_resources.run_launcher import THREADS_TAG
from tests.conftest import REPO_ROOT
from tests.demo_run import MODELS, SMALL, VIDEOS

FVC = [sys.executable, "-m", "fvc_assets.cli"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(demo_run):
    """The session's local run of the demo corpus (tests/demo_run.py)."""
    return demo_run.home, demo_run.data, demo_run.env, demo_run.run


def test_fvc_run_trains_every_model_and_fold_and_prints_the_comparison(trained):
    home, data, env, run = trained
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert f"{VIDEOS} video partition(s) run, 0 failed" in run.stdout
    assert f"{1 + 5 * len(MODELS) + 1} training run(s), 0 failed" in run.stdout
    table = run.stdout.split("Model comparison")[1]
    for model in MODELS:
        assert f"\n{model} " in table
    assert "logistic_regression (shuffled labels)" in table
    assert "best model by mean ROC-AUC: " in table
    # The daemon's code servers say "No heartbeat received" each time one is replaced (every minute):
    # the instance's log file gets that, not the terminal.
    assert "No heartbeat received" not in run.stdout + run.stderr
    assert (home / "logs" / "fvc-queue-daemon.log").exists()


def test_training_runs_start_with_their_libraries_imported_by_the_run_host(trained, monkeypatch):
    """The launcher's preload_for_jobs: the host imports torch, MLflow and scikit-learn before the first
    training run is forked, and every training run's worker starts with them (its engine event says so)."""
    home, _, _, _ = trained
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name="train"))
        assert len(runs) >= 5 * (len(MODELS) - 1)
        for run in runs:
            said = [r.event_log_entry.message for r in instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records]
            forked = next(m for m in said if m.startswith("Run worker forked"))
            imported = forked.split("imported for train before it: ")[1].rstrip(".").split(", ")
            assert {"torch", "mlflow", "sklearn.linear_model", "xgboost"} <= set(imported), forked
        video = instance.get_runs(dg.RunsFilter(job_name="video_pipeline"), limit=1)[0]
        said = [r.event_log_entry.message for r in instance.get_records_for_run(
            video.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records]
        assert any(m.startswith("Run worker forked") and "imported for" not in m for m in said)


def test_duckdb_views_answer_questions_over_clips_folds_and_results(trained):
    _, data, _, _ = trained
    with duckdb.connect(str(data / "fvc.duckdb"), read_only=True) as db:
        clips = db.sql("SELECT * FROM clips").pl()
        assert clips.height == VIDEOS * 11
        assert set(FEATURE_COLUMNS) <= set(clips.columns)
        assert {"label", "dup_group", "video_id", "augmentation", "clip_path", "scaled_path"} <= set(clips.columns)
        folds = db.sql("SELECT video_id, dup_group, fold FROM folds").pl()
        assert folds.height == VIDEOS and set(folds["fold"].to_list()) == {0, 1, 2, 3, 4}
        # No group on both sides of a split, asked in SQL.
        assert db.sql("SELECT dup_group FROM folds GROUP BY dup_group HAVING count(DISTINCT fold) > 1").fetchall() == []
        held_out = db.sql("SELECT model, count(*) FROM predictions WHERE augmentation = 'original' "
                          "GROUP BY model ORDER BY model").fetchall()
        assert held_out == sorted((m, VIDEOS) for m in MODELS)  # every video scored once per model, out of fold
        metrics = db.sql("SELECT DISTINCT metric FROM metrics").pl()["metric"].to_list()
        assert {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "brier"} <= set(metrics)
        finite = db.sql("SELECT count(*) FROM metrics WHERE metric IN ('accuracy','brier') AND isfinite(value)")
        assert finite.fetchall()[0][0] == 2 * 5 * len(MODELS)
        # Which families the fakes carry, and how each model scores each family, in SQL.
        families = db.sql("SELECT DISTINCT manipulation FROM clips WHERE label = 'fake'").pl()["manipulation"]
        assert families.null_count() == 0 and families.len() >= 1
        scored = db.sql("SELECT DISTINCT model, manipulation FROM manipulation_scores").fetchall()
        assert {m for m, _ in scored} >= set(MODELS) and {f for _, f in scored} == set(families.to_list())
        assert db.sql("SELECT count(*) FROM operating_points WHERE point = 'fpr_5'").fetchall()[0][0] > 0
        assert db.sql("SELECT count(DISTINCT manipulation) FROM cross_manipulation").fetchall()[0][0] >= 1


def test_fvc_duckdb_opens_in_older_duckdb_clients_and_the_readme_query_runs(trained):
    """fvc.duckdb is in DuckDB 1.0's storage format: the oldest client the README promises opens it,
    and the README's `duckdb` command-line query (also in docs/pipeline.md) answers as written (run in the folder
    above data/)."""
    import shlex

    from tests.duckdb_clients import cli_command, oldest_python_client_path

    _, data, _, _ = trained
    code = ("import sys, duckdb; db = duckdb.connect(sys.argv[1], read_only=True); "
            "print(duckdb.__version__, db.sql('SELECT count(*) FROM clips').fetchone()[0])")
    old = subprocess.run([sys.executable, "-c", code, str(data / "fvc.duckdb")], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(oldest_python_client_path())})
    assert old.stdout.split() == ["1.0.0", str(VIDEOS * 11)], old.stderr

    readme = (REPO_ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("duckdb -readonly data/fvc.duckdb"))
    argv = shlex.split(command)
    duckdb_cli, cli_env = cli_command()
    answer = subprocess.run([str(duckdb_cli), *argv[1:]], cwd=data.parent, env=cli_env, capture_output=True,
                            text=True)
    assert answer.returncode == 0, answer.stderr
    for model in MODELS:
        assert model in answer.stdout


def _data_of(home):
    return home.parent / "data"


def test_dagster_records_checks_and_partitions(trained):
    home, _, env, _ = trained
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = dg.DagsterInstance.get()
        partitions = instance.get_materialized_partitions(dg.AssetKey("fold_results"))
        assert len(partitions) == 5 * (len(MODELS) - 1)  # the base models
        assert instance.get_materialized_partitions(dg.AssetKey("ensemble_results")) == {"0", "1", "2", "3", "4"}
        for key, name in [("folds", "no_leakage"), ("video_catalog", "catalog_sane"),
                          ("fold_results", "all_models_and_folds_present"), ("fold_results", "model_not_collapsed"),
                          ("ensemble_results", "model_not_collapsed")]:
            check_key = dg.AssetCheckKey(dg.AssetKey(key), name)
            records = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=1)
            assert records and records[0].status.value == "SUCCEEDED", (key, name)
        # Every table asset tells the UI its columns (on the materialisation, or declared on the definition)
        # and rows.
        from fvc_assets.definitions import defs

        graph = defs.resolve_asset_graph()
        for asset in ("raw_videos", "augmented_videos", "handcrafted_features", "scaled_videos", "scaled_features",
                      "video_catalog", "folds", "fold_results", "ensemble_results", "model_comparison"):
            event = instance.get_latest_materialization_event(dg.AssetKey(asset)).asset_materialization
            schema = event.metadata.get("dagster/column_schema") or graph.get(dg.AssetKey(asset)).metadata[
                "dagster/column_schema"]
            columns = [c.name for c in schema.schema.columns]
            assert columns and event.metadata["dagster/row_count"].value > 0, asset
            if asset == "video_catalog":
                catalog = pl.read_parquet(_data_of(home) / "catalog" / "video_catalog.parquet")
                assert columns == catalog.columns and event.metadata["dagster/row_count"].value == catalog.height
        trained = instance.get_latest_materialization_event(dg.AssetKey("fold_results")).asset_materialization
        assert trained.metadata["training_profile"].value.startswith("smoke: the demo's networks for 1 epoch")
        comparison = instance.fetch_materializations(dg.AssetKey("model_comparison"), limit=1).records
        metadata = comparison[0].asset_materialization.metadata
        assert metadata["best_model"].value in MODELS
        for plot in ("roc_plot", "pr_plot", "calibration_plot"):
            assert "data:image/png;base64," in metadata[plot].value
    finally:
        os.environ.pop("DAGSTER_HOME", None)


def test_every_fold_is_an_mlflow_run_tagged_with_its_dagster_run(trained):
    from mlflow import MlflowClient

    home, data, _, _ = trained
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    experiments = {e.name: e.experiment_id for e in client.search_experiments()}
    assert {f"fvc/{m}" for m in MODELS} <= set(experiments)
    runs = client.search_runs([experiments[f"fvc/{m}"] for m in MODELS], max_results=1000)
    assert len(runs) == 5 * len(MODELS)
    for run in runs:
        assert run.info.status == "FINISHED"
        assert {"model", "fold", "dagster_run_id", "data_version"} <= set(run.data.tags)
        assert "roc_auc" in run.data.metrics or "accuracy" in run.data.metrics
    artifacts = client.list_artifacts(runs[0].info.run_id, "model")
    assert artifacts, "the fitted model is an MLflow artifact"
    # A frame model's run keeps its training curves: per epoch and per step, real times, parameter counts.
    deep = [r for r in runs if r.data.tags["model"] == "naive_cnn"]
    assert len(deep) == 5
    for run in deep:
        epochs = client.get_metric_history(run.info.run_id, "epoch_train_loss")
        assert [m.step for m in epochs] == [1] and epochs[0].timestamp > 1_600_000_000_000
        gradient = client.get_metric_history(run.info.run_id, "epoch_grad_norm")
        assert [m.step for m in gradient] == [1] and gradient[0].value > 0
        # Per-step records come every log_every_steps (10 in the demo profile); this small corpus may not reach it.
        assert all(m.value > 0 for m in client.get_metric_history(run.info.run_id, "grad_norm"))
        assert run.data.metrics["trainable_parameters"] > 90_000
        assert {"epoch_logit_std", "epoch_distinct_logits", "epoch_lr"} <= set(run.data.metrics)


def test_comparison_slices_and_best_model_files(trained):
    _, data, _, _ = trained
    out = data / "comparison"
    best = json.loads((out / "best_model.json").read_text())
    assert best["best_model"] in MODELS
    # The nested choice of the best model, per outer fold, among the models with inner scores.
    nested = best["nested"]
    assert set(nested["nested_choices"]) == {"0", "1", "2", "3", "4"}
    assert set(nested["nested_choices"].values()) <= set(MODELS) - {"ensemble"}
    assert 0 <= nested["nested_roc_auc"] <= 1 and nested["naive_pick"] in MODELS
    table = pl.read_parquet(out / "table.parquet")
    assert {"ensemble_average", "best model, chosen by inner CV (nested)"} <= set(table["model"].to_list())
    slices = pl.read_parquet(out / "slices.parquet")
    assert {"resolution", "codec", "duration", "platform"} <= set(slices["slice"].to_list())
    # Each manipulation family the demo manifest names, per model; operating points fixed on inner folds.
    catalog = pl.read_parquet(data / "catalog" / "video_catalog.parquet")
    named = set(catalog.filter(pl.col("label") == "fake")["manipulation"].to_list())
    assert named and named <= {"resample_jpeg", "splice", "flicker", "upsample"}
    assert catalog.filter(pl.col("label") == "real")["manipulation"].null_count() == catalog.filter(
        pl.col("label") == "real").height
    by_family = pl.read_parquet(out / "manipulations.parquet")
    assert set(by_family["manipulation"].to_list()) == named and "xgboost" in set(by_family["model"].to_list())
    points = pl.read_parquet(out / "operating_points.parquet")
    assert set(points["point"].to_list()) == {"fpr_1", "fpr_5", "top_10"}
    assert set(points["model"].to_list()) >= set(MODELS) - {"ensemble"}
    assert points["fold"].n_unique() == 5 and points["tpr"].drop_nans().is_between(0, 1).all()
    assert set(best["thresholds"]) >= set(MODELS) and set(best["thresholds"]["xgboost"]) == {"fpr_1", "fpr_5",
                                                                                             "top_10"}
    # Leave one family out: the feature models and naive_cnn, every family the catalog names that has fakes
    # in a fold beside real videos.
    cross = pl.read_parquet(out / "cross_manipulation.parquet")
    assert set(cross["model"].to_list()) == {"logistic_regression", "linear_svm", "xgboost", "naive_cnn"}
    assert set(cross["manipulation"].to_list()) <= named and cross.height > 0
    assert cross["roc_auc"].is_between(0, 1).all()
    for name in ("roc", "pr", "calibration"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fvc_predict_scores_new_videos_without_touching_them(trained, tmp_path):
    _, data, env, _ = trained
    subprocess.run([*FVC, "demo-corpus", "--out", str(tmp_path / "new"), "--videos", "2", "--seed", "9", *SMALL],
                   env=env, check=True, capture_output=True)
    videos = sorted(p for p in (tmp_path / "new").iterdir() if p.suffix != ".csv")
    before = {p: p.read_bytes() for p in videos}
    broken = tmp_path / "new" / "broken.mp4"
    broken.write_bytes(b"not a video")
    result = subprocess.run([*FVC, "predict", "--json", *map(str, videos), str(broken)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1  # the broken file fails, the others are scored
    rows = {r["path"]: r for r in json.loads(result.stdout)}
    best = json.loads((data / "comparison" / "best_model.json").read_text())["best_model"]
    for video in videos:
        row = rows[str(video)]
        assert 0.0 <= row["probability_fake"] <= 1.0 and row["model"] == best and row["folds"] == 5
        assert len(row["fold_scores"]) == 5 and row["spread"] == pytest.approx(np.std(row["fold_scores"]))
        # The decision at the default operating point, from the comparison's threshold for this model.
        assert row["operating_point"] == "fpr_5" and row["threshold"] is not None
        flagged = row["probability_fake"] >= row["threshold"]
        assert row["decision"] == ("flag for review at 5 % FPR" if flagged else "no flag")
        if best in ("logistic_regression", "linear_svm", "xgboost"):  # a feature model says why
            assert row["reasons"] and {"feature", "value", "contribution"} == set(row["reasons"][0])
            magnitudes = [abs(r["contribution"]) for r in row["reasons"]]
            assert magnitudes == sorted(magnitudes, reverse=True)
    assert rows[str(broken)]["probability_fake"] is None and str(broken) in rows[str(broken)]["error"]
    assert all(p.read_bytes() == b for p, b in before.items())
    assert not set(data.joinpath("videos").iterdir()) & {data / "videos" / v.stem for v in videos}
    named = subprocess.run([*FVC, "predict", "--model", "ensemble", str(videos[0])], env=env,
                           capture_output=True, text=True, timeout=600)
    assert named.returncode == 0 and "ensemble" in named.stdout
    folder = subprocess.run([*FVC, "predict", "--json", str(tmp_path / "new")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert folder.returncode == 1  # broken.mp4 is in the folder too; the manifests (.csv) are not videos
    assert sorted(r["path"] for r in json.loads(folder.stdout)) == sorted(map(str, [*videos, broken]))
    explained = subprocess.run([*FVC, "predict", "--model", "xgboost", str(videos[0])], env=env,
                               capture_output=True, text=True, timeout=600)
    assert explained.returncode == 0 and " ± " in explained.stdout
    assert any(f" {feature} " in explained.stdout for feature in FEATURE_COLUMNS), explained.stdout


def test_cpu_trainings_ran_side_by_side_and_a_second_run_launches_nothing(trained, monkeypatch):
    """No pool holds CPU work: under --jobs 2, training runs overlapped in time. Then `fvc run` again, with
    nothing new: every job is up to date and no run is launched."""
    home, data, env, _ = trained
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        spans = []
        for record in instance.get_run_records(dg.RunsFilter(job_name="train")):
            assert record.start_time and record.end_time
            spans.append((record.start_time, record.end_time, record.dagster_run.tags["dagster/partition"]))
            assert record.dagster_run.tags.get("fvc/launched_by") == "fvc run"
        spans.sort()
        overlapping = [(a[2], b[2]) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]
        assert overlapping, "no two training runs overlapped under --jobs 2"
        # A job's only run (the catalog, the comparison) runs alone and asks for every core; the runs of a job
        # with many partitions share the cores by the instance's setting (no tag).
        threads = {(run.job_name, run.tags.get(THREADS_TAG)) for run in instance.get_runs()}
        assert threads == {("video_pipeline", None), ("catalog", str(os.cpu_count())), ("train", None),
                           ("ensemble", None), ("compare", str(os.cpu_count())),
                           ("promote", str(os.cpu_count()))}, threads
        before = len(instance.get_runs())
    again = subprocess.run([*FVC, "run", "--jobs", "2"], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    # The promotion too, whether its gate passed or refused the candidate (a refusal is not retried).
    for job in ("video_pipeline", "catalog", "train", "ensemble", "compare", "promote"):
        assert f"{job}: up to date, nothing to run" in again.stdout, again.stdout
    assert "no run launched" in again.stdout
    with dg.DagsterInstance.get() as instance:
        assert len(instance.get_runs()) == before


def test_the_run_registers_its_pick_and_fvc_serve_answers_with_the_champion(trained, tmp_path):
    """The promotion registered the comparison's nested pick; its gate either made it the champion or refused
    it with the reason (the smoke profile's models are near chance). Then `fvc serve` scores a demo video with
    the champion (promoted by hand when the gate refused) and names its version."""
    import requests

    from tests.serve_fixtures import registry_of, start_server

    home, data, env, run = trained
    registry = registry_of(home)
    first = registry.versions()[-1]
    best = json.loads((data / "comparison" / "best_model.json").read_text())
    assert first.tags["model"] == best["nested"]["naive_pick"]
    bundle = data / "deployed" / first.digest
    assert (bundle / "bundle.json").exists() and json.loads((bundle / "bundle.json").read_text())["videos"] > 0
    champion = registry.champion()
    promotion = run.stdout.split("\npromotion")[1]
    if champion is None:
        assert first.tags["promotion"].startswith("refused"), first.tags
        assert f": candidate v{first.version} refused" in promotion and "fvc model promote" in promotion
        by_hand = subprocess.run([*FVC, "model", "promote", first.version, "--reason", "serving test"], env=env,
                                 capture_output=True, text=True, timeout=120)
        assert by_hand.returncode == 0, by_hand.stderr
        champion = registry.champion()
        assert "by hand" in champion.tags["promotion"] and "serving test" in champion.tags["promotion"]
    else:
        assert f"champion: fvc-detector v{champion.version}" in promotion
    listed = subprocess.run([*FVC, "model", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert f"v{champion.version:<4}@champion" in listed.stdout, listed.stdout
    server = start_server(home, data, tmp_path, workers=1)
    try:
        server.wait_ready()
        video = sorted((data / "inbox").glob("*.mp4"))[0]
        reply = requests.post(f"{server.url}/v1/score", params={"name": video.name}, data=video.read_bytes(),
                              headers=server.auth, timeout=120)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["model"] == {"name": champion.tags["model"], "version": f"{champion.version}-{champion.digest}"}
        assert 0.0 <= body["probability_fake"] <= 1.0 and body["decision"]
    finally:
        server.stop()


def test_new_videos_run_alone_and_refresh_stage5_once(trained, monkeypatch):
    """Two more videos: `fvc run` processes those two, then the catalog and folds once, and retrains what
    their new data versions made stale (every base model x fold, the ensemble, the comparison), once."""
    home, data, env, _ = trained
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    subprocess.run([*FVC, "demo-corpus", "--out", str(data / "inbox" / "more"), "--videos", "2", "--seed", "7", *SMALL],
                   env=env, check=True, capture_output=True)
    with dg.DagsterInstance.get() as instance:
        videos_before = len(instance.get_runs(dg.RunsFilter(job_name="video_pipeline")))
    run = subprocess.run([*FVC, "run", "--jobs", "2"], env=env, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    base = len(MODELS) - 1
    for line in ("video_pipeline: 2 run(s)", "catalog: 1 run(s)", f"train: {5 * base} run(s)",
                 "ensemble: 5 run(s)", "compare: 1 run(s)", "promote: 1 run(s)"):
        assert line in run.stdout, (line, run.stdout[-3000:])
    assert "2 video partition(s) run, 0 failed, 2 newly registered" in run.stdout
    with dg.DagsterInstance.get() as instance:
        assert len(instance.get_runs(dg.RunsFilter(job_name="video_pipeline"))) == videos_before + 2
