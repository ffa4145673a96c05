"""End to end, before any label of the window arrives: a champion trained by Vigil serves a window
of applicants it is unsure about (harmful covariate drift: the rule is unchanged, only who
applies moved), the monitoring run estimates its accuracy from its own probabilities, and the
watchdog raises the early warning without rolling back; a window of the demo's covariate drift,
which this model handles better, stays quiet. Real MLflow store, real monitoring run and watchdog."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from monitoring.metrics.window_pipeline import compute_windows
from monitoring.registry.mlflow_registry import Registry
from monitoring.serving.servable import load_servable
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import Alert, Feedback, Prediction, RegistryEvent
from monitoring.training import datasets
from monitoring.training.trainer import train
from monitoring.watchdog.evaluation import evaluate_and_act
from tests.runtimes import runtime_for

pytestmark = pytest.mark.slow


def _near_the_boundary(servable, rows: int) -> pd.DataFrame:
    kept, seed = [], 0
    while sum(len(k) for k in kept) < rows:
        frame = datasets.generate_features(rows * 4, 500 + seed)
        scores = np.asarray(servable.score_frame(frame).scores, dtype=float)
        kept.append(frame[np.abs(scores - 0.5) < 0.2])
        seed += 1
    return pd.concat(kept).head(rows)


def _log(url, servable, name, version, frame, start, labels=None, prefix="p"):
    scored = servable.score_frame(frame)
    with session_scope(url) as session:
        for i, features in enumerate(frame.to_dict("records")):
            pid = f"{prefix}{i}"
            session.add(Prediction(id=pid, model_name=name, model_version=version,
                                   created_at=start + timedelta(seconds=i * 0.1), features=features,
                                   prediction=str(scored.labels[i]), score=scored.scores[i], latency_ms=5.0,
                                   status="ok", source="api"))
            if labels is not None:
                session.add(Feedback(prediction_id=pid, model_name=name, label=str(labels[i]),
                                     received_at=start + timedelta(minutes=1)))


@pytest.mark.parametrize(("scenario", "warned"), [("boundary", True), ("covariate_drift", False)])
def test_harmful_drift_is_warned_of_before_labels_and_harmless_drift_is_not(settings, model_name, scenario,
                                                                             warned):
    registry = Registry(settings)
    url = settings.database_url
    version = train(datasets.generate(3000, 0), registry=registry, store_url=url, model_name=model_name,
                    actor="test", promote=True).version
    now = utcnow().replace(second=0, microsecond=0)
    with session_scope(url) as session:  # promoted three hours ago
        for event in session.scalars(select(RegistryEvent).where(RegistryEvent.model_name == model_name)):
            event.created_at = now - timedelta(hours=3)
    servable = load_servable(registry, model_name, version)
    earlier = datasets.generate(1000, 1)  # two hours ago, labelled since
    _log(url, servable, model_name, version, earlier.X(), now - timedelta(hours=2), labels=earlier.y().tolist(),
         prefix="earlier-")
    window_start = now - timedelta(minutes=10)
    current = _near_the_boundary(servable, 1500) if scenario == "boundary" else \
        datasets.generate_features(1500, 9, scenario)
    _log(url, servable, model_name, version, current, window_start, prefix="now-")
    runtime = runtime_for(url, registry, settings)

    compute_windows(runtime, model_name=model_name, start=window_start - timedelta(minutes=5),
                    end=window_start + timedelta(minutes=5), reports=False)
    [outcome] = evaluate_and_act(runtime, model_name=model_name, now=now)

    finding = next(f for f in outcome.findings if f.signal == "estimated quality")
    assert finding.status == ("degraded" if warned else "ok"), finding
    assert outcome.action == "none" and registry.alias_version(model_name, "champion") == version
    with session_scope(url) as session:
        kinds = [a.kind for a in session.scalars(select(Alert).where(Alert.model_name == model_name))]
    assert ("estimated_drop" in kinds) is warned
