"""Estimated performance before the labels arrive: confidence-based performance estimation (CBPE).

A classifier whose positive-class probabilities are calibrated says, with each answer, how likely
it is to be right. Over a window the expected confusion matrix follows:

    E[TP] = sum of p over the predicted positives     E[FP] = sum of 1 - p over them
    E[FN] = sum of p over the predicted negatives     E[TN] = sum of 1 - p over them

and from it the expected accuracy, precision, recall and F1; the expected ROC AUC is the area under
the curve traced by the expected true and false positive rates when the window is sorted by p.
This holds under covariate shift (the inputs move, the relation from inputs to outcome does not)
and fails under concept drift (the relation itself changes): no estimate from the inputs can see
that, only labels can.

It rests on calibration, so the estimate is only given after checking it on labelled rows (the
version's own labelled predictions, ``calibrate``): the expected calibration error (ECE) on ten
equal-count bins must be at most ``MAX_ECE``, as given or after an isotonic recalibration fitted on
those rows (judged out of fold, so the check does not grade its own fit), and the probabilities
must separate the classes (ROC AUC at least ``MIN_AUC`` on those rows: probabilities that say
nothing are always "calibrated" to the base rate, and an estimate from them would only repeat it).
When a check fails, or there are too few labelled rows, the estimate is withheld with the reason.

Pure functions over arrays; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MIN_ROWS = 200  # labelled rows needed to check the calibration at all
MAX_ECE = 0.05
MIN_AUC = 0.6
BINS = 10
ESTIMATED_PREFIX = "estimated_"


@dataclass(frozen=True)
class Calibration:
    """Whether the version's probabilities can carry an estimate, and the map that makes them do."""

    usable: bool
    reason: str
    rows: int
    ece: float | None = None  # of the probabilities as given
    ece_recalibrated: float | None = None  # out of fold, after isotonic recalibration
    transform: Callable[[np.ndarray], np.ndarray] | None = None


def expected_calibration_error(scores: np.ndarray, outcomes: np.ndarray, bins: int = BINS) -> float:
    """Mean |mean score - share positive| over equal-count bins, weighted by bin size."""
    order = np.argsort(scores, kind="stable")
    total = 0.0
    for part in np.array_split(order, min(bins, len(order))):
        total += abs(scores[part].mean() - outcomes[part].mean()) * len(part)
    return total / len(scores)


def calibrate(scores, outcomes, *, min_rows: int = MIN_ROWS, max_ece: float = MAX_ECE) -> Calibration:
    """Check the probabilities on labelled rows (outcomes 1 = positive class); recalibrate if needed."""
    scores, outcomes = np.asarray(scores, dtype=float), np.asarray(outcomes, dtype=float)
    keep = np.isfinite(scores) & np.isfinite(outcomes)
    scores, outcomes = scores[keep], outcomes[keep]
    rows = len(scores)
    if rows < min_rows:
        return Calibration(False, f"{rows} labelled predictions of this version, fewer than the {min_rows} "
                                  "needed to check its calibration", rows)
    if np.unique(outcomes).size < 2:
        return Calibration(False, "its labelled predictions hold one class only: calibration cannot be checked",
                           rows)
    ece = expected_calibration_error(scores, outcomes)
    if ece <= max_ece:
        return _if_separating(Calibration(True, f"calibrated as given (ECE {ece:.3f})", rows, ece, None,
                                          lambda p: p), scores, outcomes)
    recalibrated = _out_of_fold_isotonic(scores, outcomes)
    ece_after = expected_calibration_error(recalibrated, outcomes)
    if ece_after > max_ece:
        return Calibration(False, f"probabilities not fit for estimation: ECE {ece:.3f}, {ece_after:.3f} after "
                                  f"isotonic recalibration (at most {max_ece} needed)", rows, ece, ece_after)
    model = _isotonic(scores, outcomes)
    return _if_separating(Calibration(True, f"recalibrated (isotonic): ECE {ece:.3f} -> {ece_after:.3f}", rows,
                                      ece, ece_after, model.predict), recalibrated, outcomes)


def _if_separating(calibration: Calibration, scores: np.ndarray, outcomes: np.ndarray) -> Calibration:
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(outcomes, scores))
    if auc >= MIN_AUC:
        return calibration
    return Calibration(False, f"probabilities not fit for estimation: they barely separate the classes "
                              f"(ROC AUC {auc:.2f} on the labelled predictions, at least {MIN_AUC} needed)",
                       calibration.rows, calibration.ece, calibration.ece_recalibrated)


def estimate(probabilities, predicted_positive) -> dict[str, float | None]:
    """Expected accuracy, precision, recall, F1 and ROC AUC of a window (keys ``estimated_<metric>``)."""
    p = np.asarray(probabilities, dtype=float)
    positive = np.asarray(predicted_positive, dtype=bool)
    if len(p) == 0:
        return {}
    tp, fp = p[positive].sum(), (1 - p[positive]).sum()
    fn, tn = p[~positive].sum(), (1 - p[~positive]).sum()
    values = {
        "accuracy": (tp + tn) / len(p),
        "precision": tp / (tp + fp) if tp + fp > 0 else None,
        "recall": tp / (tp + fn) if tp + fn > 0 else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else None,
        "roc_auc": expected_roc_auc(p),
    }
    return {f"{ESTIMATED_PREFIX}{name}": None if v is None else float(v) for name, v in values.items()}


def expected_roc_auc(p: np.ndarray) -> float | None:
    """Area under the expected ROC curve: thresholds at each distinct p, highest first."""
    positives, negatives = p.sum(), (1 - p).sum()
    if positives <= 0 or negatives <= 0:
        return None
    values, inverse = np.unique(-p, return_inverse=True)  # descending p, ties grouped
    tpr = np.concatenate([[0.0], np.cumsum(np.bincount(inverse, weights=p, minlength=len(values)))]) / positives
    fpr = np.concatenate([[0.0], np.cumsum(np.bincount(inverse, weights=1 - p, minlength=len(values)))]) / negatives
    return float(np.trapezoid(tpr, fpr))


def _isotonic(scores: np.ndarray, outcomes: np.ndarray):
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, outcomes)


def _out_of_fold_isotonic(scores: np.ndarray, outcomes: np.ndarray) -> np.ndarray:
    """Each half recalibrated by an isotonic map fitted on the other half."""
    half = np.zeros(len(scores), dtype=bool)
    half[np.random.default_rng(0).permutation(len(scores))[: len(scores) // 2]] = True
    result = np.empty(len(scores))
    for fit, apply in ((half, ~half), (~half, half)):
        result[apply] = _isotonic(scores[fit], outcomes[fit]).predict(scores[apply])
    return result
