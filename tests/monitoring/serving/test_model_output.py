"""Reading a model's output and deciding its task and positive class: pure, tables of cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from monitoring.serving.model_output import (
    ModelOutputError,
    decide_task,
    positive_class,
    read_output,
)


class _Classifier:
    classes_ = np.array([0, 1])


@pytest.mark.parametrize(("tags", "native", "outputs", "sample", "task"), [
    ({"vigil.task": "regression"}, _Classifier(), [], None, "regression"),
    ({}, _Classifier(), [], None, "classification"),
    ({}, LinearRegression(), [], None, "regression"),
    ({}, None, [{"type": "double"}], None, "regression"),
    ({}, None, [{"type": "long"}], None, "classification"),
    ({}, None, [{"name": "prediction", "type": "double"}, {"name": "probability", "type": "double"}], None,
     "classification"),
    ({}, None, [{"name": "prediction", "type": "string"}, {"name": "proba_a", "type": "double"}], None,
     "classification"),
    ({}, None, [], np.array([0.5, 1.5]), "regression"),
    ({}, None, [], np.array(["a", "b"]), "classification"),
    ({}, None, [], pd.DataFrame({"prediction": [0.0], "probability": [0.2]}), "classification"),
])
def test_the_task_comes_from_the_tag_the_model_or_its_output(tags, native, outputs, sample, task):
    assert decide_task(tags, native, outputs, sample) == task


def test_nothing_to_decide_the_task_from_is_a_clear_refusal():
    with pytest.raises(ValueError, match="set the version tag vigil.task"):
        decide_task({}, None, [], None)
    with pytest.raises(ValueError, match="must be 'classification' or 'regression'"):
        decide_task({"vigil.task": "ranking"}, None, [], None)


def test_the_positive_class_is_the_tagged_one_matched_as_text_else_the_last():
    assert positive_class({}, [0, 1]) == 1
    assert positive_class({"vigil.positive_class": "0"}, [0, 1]) == 0
    assert positive_class({"vigil.positive_class": "yes"}, None) == "yes"
    with pytest.raises(ValueError, match="not one of the model's classes"):
        positive_class({"vigil.positive_class": "2"}, [0, 1])


@pytest.mark.parametrize(("output", "positive", "labels", "probabilities"), [
    (np.array([1, 0]), None, [1, 0], None),
    (np.array([[1.5], [2.5]]), None, [1.5, 2.5], None),
    ([1, 0], None, [1, 0], None),
    (pd.Series(["a", "b"]), None, ["a", "b"], None),
    (pd.DataFrame({"score": [0.1, 0.2]}), None, [0.1, 0.2], None),
    (pd.DataFrame({"prediction": [1, 0], "probability": [0.9, 0.3]}), None, [1, 0], [0.9, 0.3]),
    (pd.DataFrame({"prediction": [1, 0], "proba_0": [0.1, 0.7], "proba_1": [0.9, 0.3]}), None, [1, 0],
     [0.9, 0.3]),
    (pd.DataFrame({"prediction": [1, 0], "proba_0": [0.1, 0.7], "proba_1": [0.9, 0.3]}), 0, [1, 0],
     [0.1, 0.7]),
    ({"prediction": ["y", "n"], "probability": [0.8, 0.1]}, None, ["y", "n"], [0.8, 0.1]),
])
def test_outputs_are_read_by_the_convention(output, positive, labels, probabilities):
    assert read_output(output, 2, positive) == (labels, probabilities)


@pytest.mark.parametrize(("output", "message"), [
    (np.array([1, 0, 1]), "returned 3 predictions for 2 rows"),
    (np.zeros((2, 3)), "an array of shape \\(2, 3\\)"),
    (pd.DataFrame({"a": [1, 2], "b": [3, 4]}), "name one of them 'prediction'"),
    (pd.DataFrame({"prediction": [1, 0], "proba_0": [0.1, 0.7]}), "no column 'proba_1'"),
])
def test_unreadable_outputs_say_why(output, message):
    with pytest.raises(ModelOutputError, match=message):
        read_output(output, 2, 1 if "proba_1" in message else None)
