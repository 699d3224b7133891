"""Choosing the best model on the folds it is scored on inflates its score; the nested choice does not."""

import numpy as np
import polars as pl

from fvc_assets.train.comparison import NESTED, naive_and_nested, nested_metrics, nested_selection, summarize
from sklearn.metrics import roc_auc_score

N_FOLDS = 5


def noise_models(seed: int, n_models: int = 20, videos_per_fold: int = 100):
    """(inner predictions, outer metrics) of ``n_models`` models whose scores are pure noise: any model
    that looks better than another does so by chance."""
    rng = np.random.default_rng(seed)
    target = {f: rng.integers(0, 2, videos_per_fold) for f in range(N_FOLDS)}
    inner_rows, metric_rows = [], []
    for m in range(n_models):
        model = f"model_{m:02d}"
        for outer in range(N_FOLDS):
            for fold in range(N_FOLDS):
                if fold == outer:
                    continue
                inner_rows.append(pl.DataFrame({
                    "model": model, "outer_fold": outer, "fold": fold, "augmentation": "original",
                    "video_id": [f"{fold}_{i}" for i in range(videos_per_fold)],
                    "target": target[fold], "score": rng.random(videos_per_fold)}))
            auc = roc_auc_score(target[outer], rng.random(videos_per_fold))
            metric_rows.append({"model": model, "fold": outer, "metric": "roc_auc", "value": float(auc)})
    return pl.concat(inner_rows), pl.DataFrame(metric_rows)


def test_nested_choice_is_not_inflated_by_chance_where_the_naive_pick_is():
    naive, nested = [], []
    for seed in range(8):
        inner, metrics = noise_models(seed)
        selection = nested_selection(inner, metrics)
        result = naive_and_nested(summarize(metrics), selection)
        naive.append(result["naive_roc_auc"])
        nested.append(result["nested_roc_auc"])
        assert set(result["nested_choices"]) == {str(f) for f in range(N_FOLDS)}
    # Best of 20 noise models, judged on its own folds: well above chance every time.
    assert min(naive) > 0.52 and np.mean(naive) > 0.54
    # Chosen on inner folds, judged on the outer fold: chance, give or take its noise.
    assert abs(np.mean(nested) - 0.5) < 0.02
    assert np.mean(naive) - np.mean(nested) > 0.03


def test_a_model_better_on_inner_folds_is_chosen_and_scored_on_the_outer_fold():
    inner, metrics = noise_models(0, n_models=3)
    # model_01 ranks every inner fold perfectly: it must be chosen for every outer fold.
    inner = inner.with_columns(pl.when(pl.col("model") == "model_01").then(pl.col("target").cast(pl.Float64))
                               .otherwise(pl.col("score")).alias("score"))
    selection = nested_selection(inner, metrics)
    assert set(selection["model"].to_list()) == {"model_01"}
    outer = metrics.filter((pl.col("model") == "model_01") & (pl.col("metric") == "roc_auc")).sort("fold")
    nested = nested_metrics(selection).filter(pl.col("metric") == "roc_auc").sort("fold")
    assert nested["model"].unique().to_list() == [NESTED]
    assert np.allclose(nested["value"].to_numpy(), outer["value"].to_numpy())
