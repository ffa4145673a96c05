"""Settings from the environment: an empty variable counts as not set."""

from __future__ import annotations

from monitoring.settings import Settings


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
