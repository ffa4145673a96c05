"""The class a window's logged scores are the probability of, and the quality metrics about it:
a model whose positive class is not the last label in sorted order ("approved" of "approved" /
"rejected") gets its real ROC AUC, precision and recall, not their mirror image."""

from __future__ import annotations

import pytest

from monitoring.metrics.window_pipeline import positive_class
from monitoring.training.modeling import quality_metrics


@pytest.mark.parametrize(("predictions", "scores", "expected"), [
    (["approved", "rejected", "approved"], [0.9, 0.2, 0.7], "approved"),
    (["approved", "rejected", "approved"], [0.1, 0.8, 0.3], "rejected"),
    (["1", "0", "1", "0"], [0.6, 0.4, 0.55, 0.45], "1"),
    (["1", "1"], [0.8, 0.9], "1"),  # one predicted class, its probability high: it is the positive
    (["0", "0"], [0.2, 0.1], None),  # one predicted class, low probability: the other one, unknown
    (["a", "b"], [0.5, 0.5], None),  # no difference: cannot tell
    (["a", "b", "c"], [0.9, 0.5, 0.1], None),  # not binary
    ([None, "yes"], [0.3, 0.9], "yes"),  # a failed answer has no class
    ([], [], None),
])
def test_positive_class(predictions, scores, expected):
    assert positive_class(predictions, scores) == expected


TRUTH = ["approved", "approved", "rejected", "rejected", "approved"]
GUESS = ["approved", "approved", "rejected", "approved", "approved"]
P_APPROVED = [0.9, 0.8, 0.1, 0.6, 0.7]  # ranks every approved above every rejected


def test_the_metrics_are_about_the_class_the_scores_are_for():
    about_approved = quality_metrics("classification", TRUTH, GUESS, P_APPROVED, positive="approved")
    assert about_approved["roc_auc"] == 1.0
    assert about_approved["precision"] == pytest.approx(3 / 4) and about_approved["recall"] == 1.0
    mirrored = quality_metrics("classification", TRUTH, GUESS, P_APPROVED)  # "rejected" sorts last
    assert mirrored["roc_auc"] == 0.0
    assert quality_metrics("classification", TRUTH, GUESS, P_APPROVED, positive="unknown") == mirrored
