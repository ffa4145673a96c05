"""Settings from the environment: an empty variable counts as not set; the watchdog's section too."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitoring.settings import Settings, WatchdogPolicy


def test_an_empty_secret_variable_leaves_slack_off(monkeypatch):
    monkeypatch.setenv("VIGIL_SLACK_BOT_TOKEN", "")
    monkeypatch.setenv("VIGIL_SLACK_WEBHOOK_URL", "")
    monkeypatch.setenv("VIGIL_OPERATOR_TOKEN", "")
    settings = Settings()
    assert settings.slack_bot_token is None and settings.operator_token is None
    assert settings.slack_enabled is False


def test_a_set_variable_is_read(monkeypatch):
    monkeypatch.setenv("VIGIL_SLACK_WEBHOOK_URL", "https://hooks.example/T/B/x")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    settings = Settings()
    assert settings.slack_enabled is True
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"


def test_the_watchdog_thresholds_keep_their_flat_variable_names(monkeypatch):
    monkeypatch.setenv("VIGIL_MIN_LABELS", "12")
    monkeypatch.setenv("VIGIL_QUALITY_ABS_DROP", "0.2")
    monkeypatch.setenv("VIGIL_MAX_AUTO_ROLLBACKS_PER_DAY", "5")
    monkeypatch.setenv("VIGIL_DRIFT_SHARE", "0.3")
    monkeypatch.setenv("VIGIL_LATENCY_P95_SLO_MS", "")  # empty: the default
    watchdog = Settings().watchdog
    assert (watchdog.min_labels, watchdog.quality_abs_drop) == (12, 0.2)
    assert (watchdog.max_auto_rollbacks_per_day, watchdog.drift_share) == (5, 0.3)
    assert watchdog.latency_p95_slo_ms == 250.0


def test_a_bad_threshold_is_refused_with_its_name(monkeypatch):
    monkeypatch.setenv("VIGIL_DRIFT_SHARE", "1.5")
    with pytest.raises(ValidationError, match="drift_share"):
        Settings()


def test_a_threshold_given_at_the_top_level_is_refused_not_ignored():
    with pytest.raises(ValidationError, match="min_labels"):
        Settings(min_labels=50)
    assert Settings(watchdog=WatchdogPolicy(min_labels=50)).watchdog.min_labels == 50


def test_a_bad_setting_is_explained_by_its_variable_and_a_secret_is_not_shown(monkeypatch):
    from pydantic import ValidationError

    from monitoring.settings import explain

    monkeypatch.setenv("VIGIL_RETENTION_OUTBOX_DAYS", "0")
    with pytest.raises(ValidationError) as retention:
        Settings()
    assert explain(retention.value) == ("bad setting: VIGIL_RETENTION_OUTBOX_DAYS=0: "
                                        "input should be greater than or equal to 1")
    monkeypatch.delenv("VIGIL_RETENTION_OUTBOX_DAYS")
    with pytest.raises(ValidationError) as secret:
        Settings(database_url=["postgresql://vigil:s3cret@db/vigil"])
    assert "VIGIL_DATABASE_URL=(hidden)" in explain(secret.value) and "s3cret" not in explain(secret.value)
