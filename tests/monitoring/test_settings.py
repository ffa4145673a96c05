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


def test_the_served_models_are_a_comma_separated_list_with_the_default_model_first(monkeypatch):
    from monitoring.settings import explain

    assert Settings(model_name="loans").served_model_names == ["loans"]
    monkeypatch.setenv("VIGIL_MODEL_NAME", "loans")
    monkeypatch.setenv("VIGIL_SERVED_MODELS", " churn, loans,,fraud ")
    assert Settings().served_model_names == ["loans", "churn", "fraud"]
    monkeypatch.setenv("VIGIL_SERVED_MODELS", "churn,team/fraud")
    with pytest.raises(ValidationError) as bad:
        Settings()
    assert explain(bad.value).startswith("bad setting: VIGIL_SERVED_MODELS=churn,team/fraud: ")
    assert "'team/fraud' cannot be a served model's name" in explain(bad.value)


# -- secrets from files (VIGIL_<NAME>_FILE) ---------------------------------------------------------

def test_a_secret_comes_from_the_file_its_file_variable_names(monkeypatch, tmp_path):
    url, token, password = tmp_path / "url", tmp_path / "token", tmp_path / "mlflow"
    url.write_text("postgresql+psycopg2://vigil:pw@postgres:5432/vigil\n")  # editors add a newline
    token.write_text("Zq8-very-long-operator-token-from-a-file-4a7")
    password.write_text("mlflow-password\n")
    for name in ("VIGIL_DATABASE_URL", "VIGIL_OPERATOR_TOKEN", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VIGIL_DATABASE_URL_FILE", str(url))
    monkeypatch.setenv("VIGIL_OPERATOR_TOKEN_FILE", str(token))
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD_FILE", str(password))
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg2://vigil:pw@postgres:5432/vigil"
    assert settings.operator_token.get_secret_value() == "Zq8-very-long-operator-token-from-a-file-4a7"
    assert settings.mlflow_tracking_password.get_secret_value() == "mlflow-password"
    assert "pw@" not in repr(settings) and "mlflow-password" not in repr(settings)


def test_a_secret_file_still_passes_the_checks_of_its_setting(monkeypatch, tmp_path):
    (tmp_path / "token").write_text("changeme\n")
    monkeypatch.delenv("VIGIL_OPERATOR_TOKEN", raising=False)
    monkeypatch.setenv("VIGIL_OPERATOR_TOKEN_FILE", str(tmp_path / "token"))
    with pytest.raises(ValidationError, match="too weak"):
        Settings()


@pytest.mark.parametrize("problem", ["both", "missing", "empty"])
def test_a_bad_secret_file_is_refused_naming_the_variable_not_the_value(monkeypatch, tmp_path, problem):
    from monitoring.settings import SecretFileError

    secret = tmp_path / "url"
    secret.write_text("" if problem == "empty" else "postgresql://u:hunter2@h/db")
    monkeypatch.setenv("VIGIL_DATABASE_URL_FILE", str(secret if problem != "missing" else tmp_path / "nope"))
    if problem == "both":
        monkeypatch.setenv("VIGIL_DATABASE_URL", "sqlite:///x.db")
    else:
        monkeypatch.delenv("VIGIL_DATABASE_URL", raising=False)
    with pytest.raises(SecretFileError, match="VIGIL_DATABASE_URL") as refused:
        Settings()
    assert "hunter2" not in str(refused.value)
    assert {"both": "both", "missing": "cannot read it", "empty": "is empty"}[problem] in str(refused.value)


def test_an_empty_optional_secret_file_leaves_it_unset(monkeypatch, tmp_path):
    (tmp_path / "slack").write_text("")
    monkeypatch.delenv("VIGIL_SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("VIGIL_SLACK_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("VIGIL_SLACK_BOT_TOKEN_FILE", str(tmp_path / "slack"))
    assert Settings().slack_enabled is False
    (tmp_path / "slack").write_text("xoxb-from-a-file\n")
    assert Settings().slack_bot_token.get_secret_value() == "xoxb-from-a-file"


def test_the_read_url_is_the_store_unless_a_read_only_role_is_set(monkeypatch):
    monkeypatch.setenv("VIGIL_DATABASE_URL", "postgresql+psycopg2://vigil@db/vigil")
    monkeypatch.delenv("VIGIL_DATABASE_READ_URL", raising=False)
    assert Settings().read_url == "postgresql+psycopg2://vigil@db/vigil"
    monkeypatch.setenv("VIGIL_DATABASE_READ_URL", "postgresql+psycopg2://vigil_reader@db/vigil")
    assert Settings().read_url == "postgresql+psycopg2://vigil_reader@db/vigil"
