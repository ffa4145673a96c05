"""One typed settings object, read from the environment (prefix ``VIGIL_``) once, on first use.

The defaults give the embedded mode: Vigil's store and MLflow both in SQLite files under
``./var/``. ``VIGIL_DATABASE_URL`` and ``MLFLOW_TRACKING_URI`` switch to PostgreSQL and an MLflow
server. Secrets are ``SecretStr`` so they never show up in a repr or a log line.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # an empty variable means "not set" (docker-compose passes optional secrets as "")
    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore", env_ignore_empty=True)

    # Where things live
    var_dir: Path = Path("var")
    database_url: str = "sqlite:///var/vigil.db"
    mlflow_tracking_uri: str = Field(
        "sqlite:///var/mlflow.db",
        validation_alias=AliasChoices("VIGIL_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI"),
    )
    mlflow_artifact_root: str | None = None  # default: <var_dir>/mlartifacts
    mlflow_experiment: str = "vigil"

    # The model being watched by default (every table is keyed by model name)
    model_name: str = "loan-default"
    champion_alias: str = "champion"

    # Serving
    api_url: str = "http://127.0.0.1:8000"
    dashboard_url: str = "http://127.0.0.1:8501"
    operator_token: SecretStr | None = None
    alias_poll_seconds: float = 2.0
    max_batch_rows: int = 1000
    max_body_bytes: int = 2_000_000
    log_buffer_rows: int = 100_000
    log_flush_rows: int = 500
    log_flush_seconds: float = 0.5
    prediction_logging: bool = True

    # Monitoring windows
    window_minutes: int = 5
    drift_sample_rows: int = 5_000

    # Watchdog
    min_labels: int = 30
    quality_abs_drop: float = 0.10
    quality_rel_drop: float = 0.15
    latency_p95_slo_ms: float = 250.0
    latency_p99_slo_ms: float = 500.0
    error_rate_limit: float = 0.05
    consecutive_breaches: int = 3
    cooldown_minutes: int = 30
    max_auto_rollbacks_per_day: int = 2
    bake_minutes: int = 10

    # Slack: off unless a bot token or an incoming webhook is set
    slack_bot_token: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    slack_channel: str = "#vigil-oncall"
    slack_base_url: str | None = None  # tests point the SDK at a local fake Slack
    renotify_minutes: int = 60

    @property
    def artifact_root(self) -> Path:
        return Path(self.mlflow_artifact_root) if self.mlflow_artifact_root else self.var_dir / "mlartifacts"

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None or self.slack_webhook_url is not None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call."""
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
