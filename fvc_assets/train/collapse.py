"""Has a trained model collapsed? (pure: the predecessor's "loss 0.0000" failure, named.)"""

from __future__ import annotations

import math

import numpy as np

TINY_LOSS = 1e-4
CHANCE_BAND = 0.05  # a held-out ROC-AUC within this of 0.5 is "near chance"


def collapse_reasons(info: dict, held_out_scores: np.ndarray, held_out_roc_auc: float) -> list[str]:
    """Why this fold's model looks collapsed (empty when it does not).

    ``info``: what training reported (deep models: the last epoch's ``final_*`` statistics and
    ``zero_gradient_steps``); ``held_out_scores``: its scores of the held-out originals.
    """
    reasons = []
    scores = np.asarray(held_out_scores, dtype=float)
    if scores.size > 1 and len(np.unique(scores)) == 1:
        reasons.append(f"every held-out video got the same score ({scores[0]:.6g})")
    distinct = info.get("final_distinct_logits")
    if distinct is not None and distinct <= 1:  # NaN (no batch of two) compares False
        reasons.append("all logits of the last epoch were equal within each batch")
    steps, zero = info.get("optimizer_steps", 0), info.get("zero_gradient_steps", 0)
    if steps and zero == steps:
        reasons.append(f"the gradient was zero at all {steps} optimizer steps")
    loss = info.get("final_train_loss")
    near_chance = math.isfinite(held_out_roc_auc) and abs(held_out_roc_auc - 0.5) <= CHANCE_BAND
    if loss is not None and math.isfinite(loss) and loss < TINY_LOSS and near_chance:
        reasons.append(f"training loss {loss:.2e} while the held-out ROC-AUC is {held_out_roc_auc:.3f}")
    return reasons
