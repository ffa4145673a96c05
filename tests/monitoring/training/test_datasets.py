"""The demo generator is seeded and realistic; the user's CSV is checked before anything is trained."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.training import datasets
from monitoring.training.datasets import DataError


def test_generator_is_deterministic_and_complete() -> None:
    first = datasets.generate(500, seed=4)
    second = datasets.generate(500, seed=4)
    pd.testing.assert_frame_equal(first.frame, second.frame)
    assert list(first.frame.columns) == [*datasets.NUMERIC, *datasets.CATEGORICAL, datasets.TARGET]
    assert set(first.frame[datasets.TARGET].unique()) == {0, 1}
    assert first.task == "classification"


def test_covariate_drift_moves_inputs_not_rule() -> None:
    healthy = datasets.generate_features(5000, seed=1)
    drifted = datasets.generate_features(5000, seed=1, scenario="covariate_drift")
    assert drifted["credit_score"].mean() < healthy["credit_score"].mean() - 30
    same_rows = datasets.true_default_probability(healthy)
    np.testing.assert_allclose(same_rows, datasets.true_default_probability(healthy, "covariate_drift"))


def test_concept_drift_changes_rule_not_inputs() -> None:
    healthy = datasets.generate_features(2000, seed=2)
    concept = datasets.generate_features(2000, seed=2, scenario="concept_drift")
    pd.testing.assert_frame_equal(healthy, concept)
    assert not np.allclose(datasets.true_default_probability(healthy),
                           datasets.true_default_probability(healthy, "concept_drift"))


@pytest.mark.parametrize(("n", "scenario", "message"), [
    (0, "healthy", "positive"),
    (10, "sideways", "unknown scenario"),
])
def test_generator_rejects_bad_arguments(n: int, scenario: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        datasets.generate(n, seed=0, scenario=scenario)


def test_user_csv_is_split_into_numeric_and_categorical(tmp_path) -> None:
    frame = datasets.generate(200, seed=3).frame
    path = tmp_path / "loans.csv"
    frame.to_csv(path, index=False)
    loaded = datasets.load_csv(path, "default")
    assert loaded.numeric == datasets.NUMERIC
    assert loaded.categorical == datasets.CATEGORICAL
    assert len(loaded.frame) == 200


@pytest.mark.parametrize(("content", "target", "message"), [
    (None, "default", "no such CSV file"),
    ("a,b\n1,2\n", "default", "no target column 'default'"),
    ("", "default", "not a readable CSV"),
    ("x,default\n" + "".join(f"{i},1\n" for i in range(30)), "default", "single value"),
    ("x,default\n1,0\n2,1\n", "default", "only 2 rows"),
])
def test_bad_csv_gives_a_clear_error(tmp_path, content, target, message) -> None:
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message):
        datasets.load_csv(path, target)


def test_garbage_text_column_is_refused(tmp_path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "amount": rng.normal(size=100),
        "junk": [f"#{rng.integers(1e9)}!?" for _ in range(100)],
        "default": rng.integers(0, 2, 100),
    })
    path = tmp_path / "junk.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="'junk'.*neither a number nor a category"):
        datasets.load_csv(path, "default")


def test_binary_file_is_not_a_csv(tmp_path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DataError):
        datasets.load_csv(path, "default")
