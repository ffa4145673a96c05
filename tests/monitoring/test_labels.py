"""One spelling for labels and predictions, and one answer to "does this prediction agree?"."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.labels import is_error, label_text, label_texts, misses


@pytest.mark.parametrize(("value", "text"), [
    # booleans are the classes 1 and 0, whatever their type or case
    (True, "1"), (False, "0"), (np.bool_(True), "1"), (np.bool_(False), "0"),
    ("True", "1"), ("true", "1"), ("TRUE", "1"), (" false ", "0"), ("False", "0"),
    # integral numbers without a decimal point
    (1, "1"), (1.0, "1"), ("1", "1"), ("1.0", "1"), (" 1 ", "1"), (np.int64(1), "1"),
    (np.float64(1.0), "1"), (np.int8(-3), "-3"), (-3, "-3"), (0.0, "0"), (-0.0, "0"), ("1e3", "1000"),
    ("12345678901234567890", "12345678901234567890"),  # beyond float precision: kept exact
    # a regressor's numbers: shortest round-trip form
    (2.5, "2.5"), ("2.50", "2.5"), (np.float64(2.5), "2.5"), (np.float32(0.1), "0.1"),
    (0.1 + 0.2, "0.30000000000000004"), (float("inf"), "inf"),
    # words are classes of their own, never booleans; case and inner text kept
    ("yes", "yes"), ("no", "no"), (" yes", "yes"), ("Yes", "Yes"), ("cat", "cat"), ("nan", "nan"),
    # missing has no spelling
    (None, None), (float("nan"), None), (np.float64("nan"), None),
])
def test_one_spelling(value, text):
    assert label_text(value) == text


@pytest.mark.parametrize("same_as_one", [True, "True", "true", 1, 1.0, "1", "1.0", np.int64(1),
                                         np.bool_(True), np.float64(1.0)])
def test_every_spelling_of_one_agrees_with_a_classifier_predicting_one(same_as_one):
    assert is_error("1", same_as_one) is False
    assert is_error(same_as_one, "1") is False
    assert is_error("0", same_as_one) is True


@pytest.mark.parametrize(("prediction", "label", "expected"), [
    ("yes", "yes", False), ("yes", "1", True), ("1", "yes", True), ("yes", True, True),
    ("yes", "no", True), ("Yes", "yes", True),
    (None, "1", True), (float("nan"), "1", True),  # no prediction never agrees
    ("2.5", "2.50", False), (2.5, "2.5", False), (2.5, 2.6, True), ("0", False, False),
])
def test_is_error(prediction, label, expected):
    assert is_error(prediction, label) is expected


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_a_missing_label_is_refused(missing):
    with pytest.raises(ValueError, match="no true label"):
        is_error("1", missing)


@pytest.mark.parametrize(("prediction", "label", "tolerance", "expected"), [
    ("yes", "yes", None, False), (2.5, "2.6", None, True),  # no tolerance: a classifier's rule
    (2.5, "2.6", 0.2, False), ("2.5", 2.9, 0.2, True), (2.5, 2.75, 0.25, False),  # at the tolerance: a hit
    (-1.0, "1", 1.5, True), (np.float32(3.0), "3.1", 0.2, False), (3, "3.0", 0.0, False),
    (None, "3", 1.0, True), (float("nan"), "3", 1.0, True), ("abc", "3", 1.0, True),  # no number: a miss
    (float("inf"), "3", 1.0, True), (3.0, "high", 1.0, True),  # a label that is no number: never hit
])
def test_misses(prediction, label, tolerance, expected):
    assert misses(prediction, label, tolerance) is expected


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_a_missing_label_is_refused_for_a_regressor_too(missing):
    with pytest.raises(ValueError, match="no true label"):
        misses(1.0, missing, 0.5)


def test_label_texts_is_label_text_of_each_value():
    values = [True, 1, 1.0, "1", " 1 ", np.int64(1), False, 0, "0.0", 2.5, "2.50", None, float("nan"), "yes",
              "Yes", "true", np.bool_(False), "", "1e3"]
    assert list(label_texts(values)) == [label_text(v) for v in values]
    assert list(label_texts([])) == []
