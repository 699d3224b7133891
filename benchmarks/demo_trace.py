"""Is the demo corpus's forensic trace learnable from the stage-2 features?

    .venv/bin/python -m benchmarks.demo_trace [SEED ...]     (default seeds 0 1)

Writes the demo corpus for each seed, computes the 12 per-frame stage-2 features
of every video (codec facts left out), and prints the group-aware 5-fold
ROC-AUC of a logistic regression (video level, originals only), with a
label-shuffled control. Demo scores say nothing about real FVC videos.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

import numpy as np


def main(seeds: list[int]) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fvc_assets.demo.corpus import write_corpus
    from fvc_assets.features.extract import clip_features
    from fvc_assets.features.handcrafted import FRAME_FEATURES
    from fvc_core.sampling import frames_to_sample

    features, labels, groups = [], [], []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as folder:
            manifest = write_corpus(Path(folder), 24, seed)
            for row in csv.DictReader(open(manifest)):
                f = clip_features(Path(folder) / row["path"], lambda n: frames_to_sample(n, 0.1, 5, 50))
                features.append([f[name] for name in FRAME_FEATURES])
                labels.append(row["label"] == "fake")
                groups.append(f"{seed}:{row['cascade_id']}")
    x, y, g = np.array(features), np.array(labels, int), np.array(groups)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    scores = cross_val_predict(model, x, y, groups=g, cv=GroupKFold(5), method="predict_proba")[:, 1]
    rng = np.random.default_rng(0)
    shuffled_by_group = {group: int(rng.integers(0, 2)) for group in sorted(set(groups))}
    y_shuffled = np.array([shuffled_by_group[group] for group in g])
    control = cross_val_predict(model, x, y_shuffled, groups=g, cv=GroupKFold(5), method="predict_proba")[:, 1]
    print(f"seeds {seeds}: {len(y)} videos, {len(set(groups))} groups")
    print(f"ROC-AUC, real labels:     {roc_auc_score(y, scores):.3f}")
    print(f"ROC-AUC, shuffled labels: {roc_auc_score(y_shuffled, control):.3f}")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [0, 1])
