"""An adopted version without a reference file or a logged dataset: its first healthy production
window becomes its drift reference (real MLflow store, real Vigil store on SQLite and PostgreSQL).

Traffic is written into the tables with the version's real predictions and true labels, as in the
watchdog tests; health is earned through the real watchdog, the window taken by the real run.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from monitoring.metrics.references import load_reference
from monitoring.metrics.window_pipeline import compute_windows
from monitoring.metrics.windows import window_containing
from monitoring.registry.adoption import adopt
from monitoring.serving.servable import load_servable
from monitoring.settings import Settings
from monitoring.store import history
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import Feedback, Prediction
from monitoring.training import datasets
from monitoring.watchdog.evaluation import SETTLE, evaluate_and_act
from tests.runtimes import runtime_for
from tests.team_models import register_team_version


def _serve(runtime, name: str, version: int, start, n: int) -> None:
    model = load_servable(runtime.registry, name, version)
    features = datasets.generate_features(n, 11)
    truth = (np.random.default_rng(3).random(n) < datasets.true_default_probability(features)).astype(int)
    predicted = model.predict(features)
    predictions, labels = [], []
    for i, (row, guess, label) in enumerate(zip(features.to_dict("records"), predicted, truth, strict=True)):
        at, pid = start + timedelta(seconds=i / 20), str(uuid.uuid4())
        predictions.append({"id": pid, "model_name": name, "model_version": version, "created_at": at,
                            "features": row, "prediction": str(guess), "score": None, "latency_ms": 10.0,
                            "status": "ok", "error": None, "source": "simulate"})
        labels.append({"prediction_id": pid, "model_name": name, "label": str(label),
                       "received_at": at + timedelta(seconds=1)})
    with session_scope(runtime.store_url) as session:
        session.execute(insert(Prediction), predictions)
        session.execute(insert(Feedback), labels)


def test_the_first_healthy_window_becomes_the_reference(store_url, mlflow_store, tmp_path, model_name):
    settings = Settings(database_url=store_url, mlflow_tracking_uri=mlflow_store, var_dir=tmp_path / "var",
                        mlflow_artifact_root=str(Path(mlflow_store[len("sqlite:///"):]).parent / "artifacts"))
    runtime = runtime_for(store_url, settings=settings)
    version = register_team_version(mlflow_store, model_name, log_accuracy=False)
    adopted = adopt(runtime, model_name=model_name, actor="test")
    assert adopted.reference.startswith("pending")
    window = window_containing(utcnow() + timedelta(minutes=settings.window_minutes), settings.window_minutes)
    _serve(runtime, model_name, version, window.start + timedelta(seconds=1), 1000)
    after = window.end + SETTLE + timedelta(seconds=1)

    early = compute_windows(runtime, model_name=model_name, start=window.start, end=window.end,
                            reports=False, now=after)  # not healthy yet: nothing taken
    assert history.reference_uri(store_url, model_name, version) == history.PENDING_REFERENCE
    assert any("no reference data" in note for note in early.notes)

    [judged] = evaluate_and_act(runtime, model_name=model_name, now=after)
    assert history.health_states(store_url, model_name)[version] == "healthy", judged
    taken = compute_windows(runtime, model_name=model_name, start=window.start, end=window.end,
                            reports=False, now=after)

    assert any("is now its drift reference" in note for note in taken.notes)
    uri = history.reference_uri(store_url, model_name, version)
    assert uri.startswith("runs:/")
    reference = load_reference(runtime, model_name, version)
    assert len(reference.frame) == 1000
    assert sorted(reference.numerical) == sorted(datasets.NUMERIC)
    assert sorted(reference.categorical) == sorted(datasets.CATEGORICAL)
