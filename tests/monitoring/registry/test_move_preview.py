"""What the dashboard says a move would do, before it is done (pure parts, and the smoke prediction
of a custom pyfunc; the full preview with a real MLflow store is exercised by
tests/app/test_dashboard_pages.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from monitoring.alerts.messages import render_plain
from monitoring.registry.move_preview import _problems, move_payload


@pytest.mark.parametrize(("kind", "current", "target", "reason", "expected"), [
    ("manual_rollback", 3, 1, "slow", []),
    ("manual_rollback", 3, None, "slow", ["no former champion to roll back to: choose a version"]),
    ("promote", 3, None, "better", ["choose a version to promote"]),
    ("promote", 3, 3, "again", ["version 3 already holds the alias"]),
    ("promote", 1, 2, "x", ["version 2 is marked bad"]),
    ("manual_rollback", 3, 1, "  ", ["a reason is required"]),
])
def test_problems_are_the_refusals_promotion_would_give(kind, current, target, reason, expected):
    assert _problems(kind, current, target, {1: "healthy", 2: "bad", 3: "healthy"}, reason) == expected


def test_slack_text_names_the_move_the_versions_the_operator_and_the_reason():
    payload = move_payload("loans", "manual_rollback", 3, 1, "dashboard:alice", "p95 doubled",
                           "http://127.0.0.1:8501")
    text = render_plain(payload, model_name="loans", kind="manual_rollback")
    assert text.splitlines()[0] == ":warning: [WARNING] loans: rolled back by an operator to version 1"
    assert "from version: 3" in text and "to version: 1" in text
    assert "by: dashboard:alice" in text and "reason: p95 doubled" in text


def test_the_smoke_prediction_loads_a_custom_pyfunc_like_the_api(settings, sqlite_url, tmp_path):
    """The preview tries the target on recent logged inputs through the API's own loader."""
    import uuid

    from sqlalchemy import insert

    from monitoring.registry.mlflow_registry import Registry
    from monitoring.registry.move_preview import smoke_prediction
    from monitoring.store.engine import session_scope, utcnow
    from monitoring.store.tables import Prediction
    from tests import model_matrix
    from tests.runtimes import runtime_for

    named = settings.model_copy(update={"model_name": f"preview-pyfunc-{uuid.uuid4().hex[:8]}"})
    registered = model_matrix.register(named, "python-model", tmp=tmp_path, promote=False)
    rows = model_matrix.request_rows(10)
    with session_scope(sqlite_url) as session:
        session.execute(insert(Prediction), [
            {"id": str(uuid.uuid4()), "model_name": named.model_name, "model_version": 1, "created_at": utcnow(),
             "features": row, "prediction": "0", "score": None, "latency_ms": 1.0, "status": "ok",
             "error": None, "source": "api"} for row in rows])
    result = smoke_prediction(runtime_for(sqlite_url, Registry(named), named), named.model_name,
                              registered.version)
    labels, probabilities = registered.expected(pd.DataFrame(rows))
    assert result.error is None and result.rows == 10
    assert result.label_counts == {str(v): labels.count(v) for v in set(labels)}
    assert result.mean_score == pytest.approx(sum(probabilities) / len(probabilities), rel=1e-9)
