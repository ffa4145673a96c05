"""One typed settings object, read from the environment (prefix ``VIGIL_``) once, on first use.

The defaults give the embedded mode: Vigil's store and MLflow both in SQLite files under
``./var/``. ``VIGIL_DATABASE_URL`` and ``MLFLOW_TRACKING_URI`` switch to PostgreSQL and an MLflow
server. Secrets are ``SecretStr`` so they never show up in a repr or a log line.

``settings.watchdog`` is the watchdog's policy: every threshold its rules use (and the dashboard
shows), read from the same flat variables (``VIGIL_MIN_LABELS``, ``VIGIL_DRIFT_SHARE``, ...).
The pure rules in ``monitoring.watchdog`` take this object itself; there is no second copy.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from monitoring.token_strength import weakness

# an empty variable means "not set" (docker-compose passes optional secrets as ""); a keyword
# that is no setting is refused, so a misspelt or moved threshold cannot be ignored silently
_FROM_ENVIRONMENT = SettingsConfigDict(env_prefix="VIGIL_", extra="forbid", env_ignore_empty=True)


class WatchdogPolicy(BaseSettings):
    """Every threshold the watchdog uses, each from its own ``VIGIL_`` variable."""

    model_config = SettingsConfigDict(**_FROM_ENVIRONMENT, frozen=True)

    min_labels: int = Field(30, ge=1)
    quality_abs_drop: float = Field(0.10, gt=0)
    quality_rel_drop: float = Field(0.15, gt=0)
    sprt_alpha: float = Field(1e-5, gt=0, lt=0.5)  # per-test false-alarm probability
    sprt_beta: float = Field(0.01, gt=0, lt=0.5)  # per-test chance of missing a full-margin drop
    latency_p95_slo_ms: float = Field(250.0, gt=0)
    latency_p99_slo_ms: float = Field(500.0, gt=0)
    error_rate_limit: float = Field(0.05, gt=0)
    min_requests: int = Field(100, ge=1)  # predictions per latency/error-rate window (a p99 needs ~100)
    consecutive_breaches: int = Field(3, ge=1)
    clear_fraction: float = Field(0.8, gt=0, le=1)  # a breach clears below this share of the limit
    cooldown_minutes: int = Field(30, ge=0)
    max_auto_rollbacks_per_day: int = Field(2, ge=1)
    bake_minutes: int = Field(10, ge=0)
    # the dataset drifts when this share of its features does (Evidently's default, half)
    drift_share: float = Field(0.5, gt=0, le=1)

    @property
    def cooldown(self) -> timedelta:
        return timedelta(minutes=self.cooldown_minutes)

    @property
    def bake(self) -> timedelta:
        return timedelta(minutes=self.bake_minutes)


class RetentionPolicy(BaseSettings):
    """How long each kind of data is kept, every age in days counted from now (``VIGIL_RETENTION_*``)."""

    model_config = SettingsConfigDict(**{**_FROM_ENVIRONMENT, "env_prefix": "VIGIL_RETENTION_"}, frozen=True)

    enabled: bool = True  # false: nothing is ever deleted
    label_delay_days: int = Field(7, ge=0)  # how late a true label may still arrive
    prediction_days: int = Field(14, ge=1)  # predictions and feedback, after the label delay
    outbox_days: int = Field(7, ge=1)  # delivered notifications (undelivered ones stay)
    access_log_days: int = Field(365, ge=1)  # the operators' audit trail
    metric_days: int = Field(90, ge=1)  # metric windows and drift rows, by window end
    report_days: int = Field(30, ge=1)  # Evidently HTML reports under <var_dir>/reports
    partitions_ahead_days: int = Field(3, ge=1)  # PostgreSQL: daily partitions made ahead
    delete_batch_rows: int = Field(5_000, ge=1)  # rows per DELETE transaction

    @property
    def prediction_keep_days(self) -> int:
        """How long a prediction (and its feedback) stays: the label delay, then the retention."""
        return self.label_delay_days + self.prediction_days


class ReliabilityPolicy(BaseSettings):
    """How quickly Vigil gives up on an unreachable MLflow, and when a silence becomes an alert.

    The MLflow client limits are applied to Vigil's own processes by the registry module (each
    also read from MLflow's own variable, so an existing ``MLFLOW_HTTP_REQUEST_TIMEOUT`` is kept).
    """

    model_config = SettingsConfigDict(**_FROM_ENVIRONMENT, frozen=True, validate_by_name=True)

    # seconds to connect and to wait for each answer (MLflow's own default is 120)
    mlflow_timeout_seconds: int = Field(10, ge=1, validation_alias=AliasChoices(
        "VIGIL_MLFLOW_TIMEOUT_SECONDS", "MLFLOW_HTTP_REQUEST_TIMEOUT"))
    # retries of a failed request (MLflow's default, 7 with backoff, waits about 4 minutes)
    mlflow_max_retries: int = Field(1, ge=0, le=10, validation_alias=AliasChoices(
        "VIGIL_MLFLOW_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"))
    mlflow_backoff_factor: int = Field(1, ge=0, le=120, validation_alias=AliasChoices(
        "VIGIL_MLFLOW_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"))
    # consecutive skipped evaluations (MLflow unreachable) for this long raise mlflow_unreachable
    mlflow_unreachable_grace_seconds: float = Field(30.0, ge=0)
    # no watchdog run completed for this long: the watchdog is stale (watchdog_stalled)
    watchdog_stale_seconds: float = Field(120.0, gt=0)


class Settings(BaseSettings):
    model_config = _FROM_ENVIRONMENT

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
    # who may read the dashboard: "login" (default) an operator or an OIDC viewer; "open" anyone
    # who reaches it (the embedded demo, on 127.0.0.1, says so)
    dashboard_access: Literal["open", "login"] = "login"
    operator_token: SecretStr | None = None
    # lockout (monitoring/lockout.py): this many wrong tokens from one client within the window
    # lock that client out for the lockout period (API: per client IP; dashboard: per name/session)
    operator_max_failures: int = Field(5, ge=1)
    operator_failure_window_seconds: float = Field(900.0, gt=0)
    operator_lockout_seconds: float = Field(900.0, gt=0)
    alias_poll_seconds: float = 2.0
    max_batch_rows: int = 1000
    max_string_feature_chars: int = Field(200, ge=1)  # a longer category value is refused (422)
    max_body_bytes: int = 2_000_000
    log_buffer_rows: int = 100_000
    log_flush_rows: int = 500
    log_flush_seconds: float = 0.5
    prediction_logging: bool = True
    # Micro-batching (monitoring/serving/scoring.py): auto batches the models without a fast path
    micro_batching: Literal["auto", "on", "off"] = "auto"
    micro_batch_wait_ms: float = Field(2.0, ge=0, le=100)
    micro_batch_max_rows: int = Field(256, ge=1)
    micro_batch_queue: int = Field(1024, ge=1)  # requests waiting for the model; more get a 503
    predict_timeout_seconds: float = Field(10.0, gt=0)  # a request waits no longer (then a 504)
    model_threads: int = Field(1, ge=0)  # OpenMP/BLAS threads per model call (0: the libraries' default)

    # Monitoring windows
    window_minutes: int = 5
    drift_sample_rows: int = 5_000

    # Watchdog: its own section, read from the environment when the settings are
    watchdog: WatchdogPolicy = Field(default_factory=WatchdogPolicy)

    # Slack: off unless a bot token or an incoming webhook is set
    slack_bot_token: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    slack_channel: str = "#vigil-oncall"
    slack_base_url: str | None = None  # tests point the SDK at a local fake Slack
    renotify_minutes: int = 60
    alert_routes_file: Path | None = None  # webhook/PagerDuty/e-mail routes (TOML or YAML)

    # Outages and silences: MLflow client limits, grace periods, the stale-watchdog threshold
    reliability: ReliabilityPolicy = Field(default_factory=ReliabilityPolicy)

    # Retention (``vigil prune``, the vigil_maintenance DAG): its own section, VIGIL_RETENTION_*
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)

    @field_validator("operator_token")
    @classmethod
    def _strong_operator_token(cls, token: SecretStr | None) -> SecretStr | None:
        why = weakness(token.get_secret_value()) if token is not None else None
        if why:
            raise ValueError(f"the operator token is too weak: {why}; make one with "
                             "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
        return token

    @property
    def artifact_root(self) -> Path:
        return Path(self.mlflow_artifact_root) if self.mlflow_artifact_root else self.var_dir / "mlartifacts"

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None or self.slack_webhook_url is not None


_PREFIXES = {"RetentionPolicy": "VIGIL_RETENTION_"}
_SECRET_LIKE = re.compile(r"TOKEN|SECRET|PASSWORD|KEY|URL|URI")


def explain(error: ValidationError) -> str:
    """A settings error in the user's words: the environment variable, what it got, what it needs."""
    prefix = _PREFIXES.get(error.title, "VIGIL_")
    lines = []
    for problem in error.errors():
        name = "_".join(str(part) for part in problem["loc"]).upper()
        if not name.startswith(("VIGIL_", "MLFLOW_")):  # an aliased field is named by its variable
            name = prefix + name
        shown = "(hidden)" if _SECRET_LIKE.search(name) else problem.get("input")
        lines.append(f"{name}={shown!s}: {problem['msg'].lower()}")
    return "bad setting: " + "; ".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call."""
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
