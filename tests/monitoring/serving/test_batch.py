"""Batch scoring with the champion: output file, logged predictions, idempotent per data interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select

from monitoring.registry.mlflow_registry import Registry, RegistryError
from monitoring.serving.batch import score_batch
from monitoring.store.engine import session_scope
from monitoring.store.tables import Prediction
from monitoring.training import datasets
from monitoring.training.datasets import DataError
from monitoring.training.trainer import train
from tests.runtimes import runtime_for

START = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def _logged(url, model_name):
    with session_scope(url) as session:
        return sorted((p.id, p.model_version, p.prediction, p.score, p.features, p.created_at,
                       p.latency_ms, p.source)
                      for p in session.scalars(select(Prediction).where(Prediction.model_name == model_name)))


def test_a_batch_is_scored_written_and_logged_once_per_interval(settings, store_url, model_name):
    registry = Registry(settings)
    version = train(datasets.generate(600, 0), registry=registry, store_url=store_url,
                    model_name=model_name, actor="test").version

    result = score_batch(runtime_for(store_url, registry, settings), interval_start=START, interval_end=END,
                         model_name=model_name, demo_rows=50)
    first = _logged(store_url, model_name)
    again = score_batch(runtime_for(store_url, registry, settings), interval_start=START, interval_end=END,
                        model_name=model_name, demo_rows=50)

    assert again == result and result.rows == 50 and result.version == version
    assert _logged(store_url, model_name) == first
    assert len(first) == 50 and {row[7] for row in first} == {"batch"}
    output = pd.read_parquet(result.output_path)
    logged = {row[0]: row for row in first}
    assert set(output["prediction_id"]) == set(logged)
    assert set(output["model_version"]) == {version}
    expected = registry.load_version(model_name, version).native.predict(datasets.generate_features(
        50, seed=int(START.timestamp()) % 2**31))
    assert list(output["prediction"]) == [str(v) for v in expected]
    assert output["age"].tolist() == [logged[pid][4]["age"] for pid in output["prediction_id"]]
    assert output["prediction"].tolist() == [logged[pid][2] for pid in output["prediction_id"]]

    score_batch(runtime_for(store_url, registry, settings), interval_start=END, interval_end=END + timedelta(hours=1),
                model_name=model_name, demo_rows=50)
    assert len(_logged(store_url, model_name)) == 100


def test_bad_input_changes_nothing(settings, model_name, tmp_path):
    registry = Registry(settings)
    url = settings.database_url
    with pytest.raises(RegistryError, match="no @champion"):
        score_batch(runtime_for(url, registry, settings), interval_start=START, interval_end=END, model_name=model_name)
    train(datasets.generate(600, 0), registry=registry, store_url=url, model_name=model_name, actor="test")
    incomplete = tmp_path / "records.csv"
    datasets.generate_features(10, 1).drop(columns=["income"]).to_csv(incomplete, index=False)
    with pytest.raises(DataError, match="income"):
        score_batch(runtime_for(url, registry, settings), interval_start=START, interval_end=END, model_name=model_name,
                    input_path=incomplete)
    with pytest.raises(DataError, match="no such"):
        score_batch(runtime_for(url, registry, settings), interval_start=START, interval_end=END, model_name=model_name,
                    input_path=tmp_path / "missing.csv")
    with session_scope(url) as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 0


def test_a_users_csv_is_scored_into_the_named_output(settings, model_name, tmp_path):
    registry = Registry(settings)
    url = settings.database_url
    train(datasets.generate(600, 0), registry=registry, store_url=url, model_name=model_name, actor="test")
    records = tmp_path / "records.csv"
    datasets.generate(30, 5).frame.to_csv(records, index=False)  # an extra target column is ignored

    result = score_batch(runtime_for(url, registry, settings), interval_start=START, interval_end=END, model_name=model_name,
                         input_path=records, output_path=tmp_path / "out" / "scored.csv")

    output = pd.read_csv(result.output_path)
    assert len(output) == 30 and "default" not in output.columns
    assert len(_logged(url, model_name)) == 30


def test_a_custom_pyfunc_champion_scores_a_batch_file_with_its_own_probabilities(settings, sqlite_url,
                                                                                  tmp_path):
    """The same loader as the API: a model Vigil did not train, read by the output convention."""
    from tests import model_matrix

    named = settings.model_copy(update={"model_name": f"batch-pyfunc-{tmp_path.name[-8:]}"})
    registered = model_matrix.register(named, "python-model", tmp=tmp_path)
    records = model_matrix.features(30, seed=5)
    records.to_csv(tmp_path / "records.csv", index=False)
    result = score_batch(runtime_for(sqlite_url, Registry(named), named), interval_start=START, interval_end=END,
                         input_path=tmp_path / "records.csv", output_path=tmp_path / "out.parquet",
                         model_name=named.model_name)
    output = pd.read_parquet(result.output_path)
    labels, probabilities = registered.expected(records)
    assert result.version == registered.version and result.rows == 30
    assert output["prediction"].tolist() == [str(v) for v in labels]
    assert output["score"].tolist() == pytest.approx(probabilities, rel=1e-9)
    assert {row[7] for row in _logged(sqlite_url, named.model_name)} == {"batch"}
