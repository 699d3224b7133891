"""Is the demo corpus's forensic trace learnable from the stage-2 features?

    .venv/bin/python -m benchmarks.demo_trace [SEED ...] [--videos N] [--scale F] [--max-frames N]
    (default seeds 0 1, 24 videos each, the plan's full sizes)

Writes the demo corpus for each seed, computes the 12 per-frame stage-2 features
of every video (codec facts left out), and prints the group-aware 5-fold
ROC-AUC of a logistic regression (video level, originals only), each
manipulation family's fakes against every real video, and a label-shuffled
control. ``--scale``/``--max-frames`` write the corpus as ``fvc demo-corpus`` does
with them (``--scale 0.5 --max-frames 24`` is `make demo`'s). Demo scores say
nothing about real FVC videos.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fvc_assets.demo.corpus import write_corpus
    from fvc_assets.features.extract import clip_features
    from fvc_assets.features.handcrafted import FRAME_FEATURES
    from fvc_core.sampling import frames_to_sample

    parser = argparse.ArgumentParser(prog="benchmarks.demo_trace")
    parser.add_argument("seeds", nargs="*", type=int, default=[0, 1])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--max-frames", type=int, default=0, help="0: no cap")
    args = parser.parse_args(argv)

    features, labels, groups, families = [], [], [], []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as folder:
            manifest = write_corpus(Path(folder), args.videos, seed, scale=args.scale,
                                    max_frames=args.max_frames or None)
            for row in csv.DictReader(open(manifest)):
                f = clip_features(Path(folder) / row["path"], lambda n: frames_to_sample(n, 0.1, 5, 50))
                features.append([f[name] for name in FRAME_FEATURES])
                labels.append(row["label"] == "fake")
                groups.append(f"{seed}:{row['cascade_id']}")
                families.append(row.get("manipulation") or "")
    x, y, g, family = np.array(features), np.array(labels, int), np.array(groups), np.array(families)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    scores = cross_val_predict(model, x, y, groups=g, cv=GroupKFold(5), method="predict_proba")[:, 1]
    rng = np.random.default_rng(0)
    shuffled_by_group = {group: int(rng.integers(0, 2)) for group in sorted(set(groups))}
    y_shuffled = np.array([shuffled_by_group[group] for group in g])
    control = cross_val_predict(model, x, y_shuffled, groups=g, cv=GroupKFold(5), method="predict_proba")[:, 1]
    print(f"seeds {args.seeds}: {len(y)} videos, {len(set(groups))} groups, scale {args.scale}, "
          f"max frames {args.max_frames or 'no cap'}")
    print(f"ROC-AUC, real labels:     {roc_auc_score(y, scores):.3f}")
    for name in sorted(set(family[y == 1]) - {""}):
        keep = (y == 0) | (family == name)
        print(f"  {name} fakes against every real video: {roc_auc_score(y[keep], scores[keep]):.3f}")
    print(f"ROC-AUC, shuffled labels: {roc_auc_score(y_shuffled, control):.3f}")


if __name__ == "__main__":
    main()
