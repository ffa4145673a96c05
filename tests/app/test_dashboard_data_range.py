"""The dashboard says how far back data goes: the retention and the oldest stored prediction,
rendered headless (streamlit AppTest) on the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.monitoring.retention.test_prune import log_predictions

pytestmark = pytest.mark.postgres

ENTRY = Path(__file__).resolve().parents[2] / "app" / "dashboard" / "main.py"


def test_overview_says_how_long_data_is_kept_and_the_oldest_prediction(postgres_url, mlflow_store,
                                                                         monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from monitoring.settings import reset_settings

    monkeypatch.setenv("VIGIL_DASHBOARD_ACCESS", "open")
    monkeypatch.setenv("VIGIL_DATABASE_URL", postgres_url)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    monkeypatch.setenv("VIGIL_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("VIGIL_RETENTION_PREDICTION_DAYS", "10")
    reset_settings()
    log_predictions(postgres_url, "m-a", datetime(2026, 11, 20, 8, 15, 30, tzinfo=UTC), ["a1"])
    log_predictions(postgres_url, "m-b", datetime(2026, 11, 21, tzinfo=UTC), ["b1"])
    log_predictions(postgres_url, "m-a", datetime.now(UTC), ["a2"])
    try:
        app = AppTest.from_file(str(ENTRY), default_timeout=120).run()
        assert not app.exception, [e.value for e in app.exception]
        captions = [caption.value for caption in app.caption]
    finally:
        reset_settings()
    assert ("Data: predictions kept 17 days (7 for labels to arrive + 10), metrics 90 days; "
            "oldest prediction 2026-11-20 08:15 UTC.") in captions
