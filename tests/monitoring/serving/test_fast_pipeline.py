"""The compiled fast path gives scikit-learn's own answers, or is not used at all."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.serving.fast_pipeline import agrees, compile_pipeline, sample_rows
from monitoring.serving.input_schema import InputError
from monitoring.training import datasets, modeling


@pytest.fixture(scope="module")
def loan_model():
    dataset = datasets.generate(1500, 0)
    return dataset, modeling.build_pipeline(dataset).fit(dataset.X(), dataset.y())


def test_vigils_classifier_is_compiled_and_matches_scikit_learn_on_real_rows(loan_model):
    dataset, model = loan_model
    scorer = compile_pipeline(model)
    assert scorer is not None
    rows = datasets.generate_features(300, 5, "covariate_drift").to_dict("records")
    rows[0]["purpose"] = "never seen in training"
    labels, scores = scorer.score(rows)
    frame = pd.DataFrame(rows)[dataset.features]
    assert labels == model.predict(frame).tolist()
    np.testing.assert_allclose(scores, model.predict_proba(frame)[:, 1], rtol=1e-9)
    one = [scorer.score([row]) for row in rows[:20]]
    assert [label for (label,), _ in one] == labels[:20]
    np.testing.assert_allclose([score for _, (score,) in one], scores[:20], rtol=1e-9)
    assert agrees(scorer, model, sample_rows(scorer), dataset.features)


def test_regressors_and_numeric_only_pipelines_are_compiled():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 20)), columns=[f"f{i}" for i in range(20)])
    target = frame["f0"] * 3 + frame["f1"] - 2 + rng.normal(size=300)
    dataset = datasets.from_frame(frame.assign(y=target), "y")
    model = modeling.build_pipeline(dataset).fit(dataset.X(), dataset.y())
    scorer = compile_pipeline(model)
    assert scorer is not None and scorer.classes is None
    predictions, scores = scorer.score(frame.head(50).to_dict("records"))
    np.testing.assert_allclose(predictions, model.predict(frame.head(50)), rtol=1e-9)
    assert predictions == scores


def test_other_shapes_are_left_to_scikit_learn(loan_model):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    dataset, model = loan_model
    forest = Pipeline([("preprocess", model[0]), ("model", RandomForestClassifier(n_estimators=3).fit(
        model[0].transform(dataset.X()), dataset.y()))])
    assert compile_pipeline(forest) is None
    assert compile_pipeline(model[-1]) is None  # a bare estimator: no named columns


def test_a_scorer_that_disagrees_is_caught(loan_model):
    dataset, model = loan_model
    scorer = compile_pipeline(model)
    broken = type(scorer)(scorer.numeric, scorer.numeric_fill, scorer.numeric_weight * 1.01,
                          scorer.categorical, scorer.intercept, scorer.classes)
    assert not agrees(broken, model, sample_rows(scorer), dataset.features)


def test_a_non_finite_score_is_an_input_error(loan_model):
    _, model = loan_model
    scorer = compile_pipeline(model)
    huge = type(scorer)(scorer.numeric, scorer.numeric_fill, scorer.numeric_weight * 1e300,
                        scorer.categorical, scorer.intercept, scorer.classes)
    row = {**sample_rows(scorer, 1)[0], "income": 1e300, "savings": -1e300}
    with pytest.raises(InputError, match="too large"):
        huge.score([row])
    with pytest.raises(InputError, match="too large"):
        huge.score([row, row])
