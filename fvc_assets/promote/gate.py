"""The promotion gate: a candidate becomes champion only if it beats the shuffled-label control by a
margin and scores no lower than the champion on the same folds."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fvc_assets.promote.bundle import Manifest


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str


def paired_mean(a: dict[str, float], b: dict[str, float]) -> tuple[float, float, int]:
    """Mean ROC-AUC of ``a`` and ``b`` over the folds both have a finite score for."""
    folds = [k for k in a if k in b and math.isfinite(a[k]) and math.isfinite(b[k])]
    if not folds:
        return math.nan, math.nan, 0
    return sum(a[k] for k in folds) / len(folds), sum(b[k] for k in folds) / len(folds), len(folds)


def verdict(candidate: Manifest, champion: Manifest | None, margin: float,
            champion_now: dict[str, float] | None = None) -> Verdict:
    """``champion_now``: the champion's model retrained on the candidate's folds (this comparison's fold
    scores of that model), used when the champion itself was scored on other folds."""
    if champion is not None and champion.digest == candidate.digest:
        return Verdict(True, f"already the champion (bundle {candidate.digest})")
    control = candidate.control.get("mean_roc_auc", math.nan)
    spread = candidate.control.get("std_roc_auc", math.nan)
    if not math.isfinite(candidate.score):
        return Verdict(False, f"{candidate.model} has no ROC-AUC to judge it by")
    if not math.isfinite(control):
        return Verdict(False, "the comparison has no shuffled-label control to judge against")
    if candidate.score < control + margin:
        return Verdict(False, f"{candidate.model} ({candidate.score_kind} ROC-AUC {candidate.score:.3f}) does not "
                              f"beat the shuffled-label control ({control:.3f} ± {spread:.3f}) by the margin "
                              f"{margin:g}: it would flag videos at about chance")
    if champion is None:
        return Verdict(True, f"{candidate.model} ({candidate.score_kind} ROC-AUC {candidate.score:.3f}) beats the "
                             f"control ({control:.3f}) by {candidate.score - control:.3f}; there is no champion yet")
    if champion.folds_fingerprint == candidate.folds_fingerprint:
        mine, theirs, n = paired_mean(candidate.fold_roc_auc, champion.fold_roc_auc)
        basis = f"the same {n} folds"
    elif champion_now:
        mine, theirs, n = paired_mean(candidate.fold_roc_auc, champion_now)
        basis = f"the candidate's {n} folds, the champion's model ({champion.model}) retrained on them"
    else:
        return Verdict(False, f"the champion ({champion.model}, bundle {champion.digest}) was scored on other "
                              f"folds and its model is not in this comparison: promote by hand if intended")
    if not n:
        return Verdict(False, f"no fold has a ROC-AUC for both the candidate and the champion ({basis})")
    if mine < theirs:
        return Verdict(False, f"{candidate.model} scores {mine:.3f} mean ROC-AUC on {basis}, below the champion "
                              f"{champion.model}'s {theirs:.3f}: the champion stays")
    return Verdict(True, f"{candidate.model} scores {mine:.3f} mean ROC-AUC on {basis}, the champion "
                         f"{champion.model} {theirs:.3f}; it beats the control ({control:.3f}) by "
                         f"{candidate.score - control:.3f}")
