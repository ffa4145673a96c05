"""One typed settings object, read from the environment (prefix ``VIGIL_``) once, on first use.

The defaults give the embedded mode: Vigil's store and MLflow both in SQLite files under
``./var/``. ``VIGIL_DATABASE_URL`` and ``MLFLOW_TRACKING_URI`` switch to PostgreSQL and an MLflow
server. Secrets are ``SecretStr`` so they never show up in a repr or a log line.

``settings.watchdog`` is the watchdog's default policy: every threshold its rules use (and the
dashboard shows), read from the same flat variables (``VIGIL_MIN_LABELS``, ``VIGIL_DRIFT_SHARE``,
...). A model may override some of its fields (``monitoring.watchdog.model_policy``, checked with
these same constraints); the pure rules in ``monitoring.watchdog`` take the merged object.

Secrets may come from files instead of variables (docker-compose ``secrets:``, Kubernetes,
systemd credentials): ``<VARIABLE>_FILE`` names a file whose content is the value, for the
variables in ``SECRET_FILE_VARIABLES`` (``VIGIL_DATABASE_URL_FILE``, ``VIGIL_OPERATOR_TOKEN_FILE``,
``VIGIL_SLACK_BOT_TOKEN_FILE``, ...). One trailing newline is dropped; setting both the variable
and its ``_FILE`` is refused, and so is a file that cannot be read (the error names the variable,
never the content). An empty file means "not set" for the optional secrets (Slack's), and is
refused for the others: an empty database URL file must not quietly mean the SQLite default.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from monitoring.token_strength import weakness

# an empty variable means "not set" (docker-compose passes optional secrets as ""); a keyword
# that is no setting is refused, so a misspelt or moved threshold cannot be ignored silently
_FROM_ENVIRONMENT = SettingsConfigDict(env_prefix="VIGIL_", extra="forbid", env_ignore_empty=True)


# the variables <variable>_FILE may stand in for, and the setting each fills
SECRET_FILE_VARIABLES = {
    "VIGIL_DATABASE_URL": "database_url",
    "VIGIL_DATABASE_READ_URL": "database_read_url",
    "VIGIL_OPERATOR_TOKEN": "operator_token",
    "VIGIL_SLACK_BOT_TOKEN": "slack_bot_token",
    "VIGIL_SLACK_WEBHOOK_URL": "slack_webhook_url",
    "MLFLOW_TRACKING_PASSWORD": "mlflow_tracking_password",
}
OPTIONAL_SECRET_FILES = frozenset({"VIGIL_SLACK_BOT_TOKEN", "VIGIL_SLACK_WEBHOOK_URL"})


class SecretFileError(ValueError):
    """A ``*_FILE`` variable names a file that cannot be used (or its variable is set too)."""


def read_secret_file(variable: str, *, optional: bool = False) -> str | None:
    """The value of ``variable`` from the file ``<variable>_FILE`` names; None if that is unset
    (or, for an ``optional`` secret, if the file is empty).

    Used for Vigil's settings and for the secrets alert routes name (``monitoring.alerts.routes``).
    """
    path = os.environ.get(f"{variable}_FILE", "")
    if not path:
        return None
    if os.environ.get(variable, ""):
        raise SecretFileError(f"both {variable} and {variable}_FILE are set: set one of them")
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read()
    except OSError as error:
        raise SecretFileError(f"{variable}_FILE={path}: cannot read it ({error.strerror})") from None
    value = value[:-1] if value.endswith("\n") else value
    value = value[:-1] if value.endswith("\r") else value
    if not value.strip():
        if optional:
            return None
        raise SecretFileError(f"{variable}_FILE={path}: the file is empty")
    return value


class _SecretFiles(PydanticBaseSettingsSource):
    """The settings named in ``SECRET_FILE_VARIABLES`` whose ``_FILE`` variable is set."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every file at once

    def __call__(self) -> dict[str, Any]:
        values = {}
        for variable, field in SECRET_FILE_VARIABLES.items():
            value = read_secret_file(variable, optional=variable in OPTIONAL_SECRET_FILES)
            if value is not None:
                values[field] = value
        return values


class WatchdogPolicy(BaseSettings):
    """Every threshold the watchdog uses, each from its own ``VIGIL_`` variable (the defaults of
    each model's policy: ``monitoring.watchdog.model_policy``)."""

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
    cooldown_minutes: int = Field(30, ge=0, le=525_600)  # at most a year
    max_auto_rollbacks_per_day: int = Field(2, ge=1)
    bake_minutes: int = Field(10, ge=0, le=525_600)
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


class ReleasePolicy(BaseSettings):
    """How the watchdog judges a canary or shadow challenger (``VIGIL_RELEASE_*``;
    ``monitoring.watchdog.challenger_judge``)."""

    model_config = SettingsConfigDict(**{**_FROM_ENVIRONMENT, "env_prefix": "VIGIL_RELEASE_"}, frozen=True)

    margin: float = Field(0.03, gt=0, lt=0.5)  # how much higher an error rate still counts as not worse
    alpha_promote: float = Field(0.001, gt=0, lt=1)  # chance of promoting a challenger worse by the margin
    alpha_abort: float = Field(0.01, gt=0, lt=1)  # chance of aborting one as good as the champion
    min_promote_labels: int = Field(200, ge=1)  # challenger labels before a promotion
    min_abort_labels: int = Field(30, ge=1)
    max_labels: int = Field(50_000, ge=1)  # beyond: inconclusive, an operator decides
    max_latency_ratio: float = Field(1.5, gt=1)  # challenger p95 over the champion's
    min_latency_increase_ms: float = Field(25.0, ge=0)  # and at least this much slower, to abort
    bake_minutes: float = Field(10.0, ge=0)  # no promotion before (``vigil canary start --bake-minutes``)
    default_share: float = Field(0.1, gt=0, lt=1)  # a canary's share of the requests


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
    model_config = SettingsConfigDict(**_FROM_ENVIRONMENT, validate_by_name=True)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        """Keyword arguments, then ``*_FILE`` secrets, then the environment (and .env files)."""
        return init_settings, _SecretFiles(settings_cls), env_settings, dotenv_settings, file_secret_settings

    # Where things live
    var_dir: Path = Path("var")
    # a URL may carry a password: kept out of the settings' repr (and so out of tracebacks)
    database_url: str = Field("sqlite:///var/vigil.db", repr=False)
    # a role that may only read (``vigil db roles``): the dashboard's pages read through it; unset,
    # they read through database_url
    database_read_url: str | None = Field(None, repr=False)
    mlflow_tracking_uri: str = Field(
        "sqlite:///var/mlflow.db",
        validation_alias=AliasChoices("VIGIL_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI"),
    )
    # an MLflow server behind basic-auth: MLflow's own variables (or MLFLOW_TRACKING_PASSWORD_FILE)
    mlflow_tracking_username: str | None = Field(None, validation_alias=AliasChoices(
        "VIGIL_MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_USERNAME"))
    mlflow_tracking_password: SecretStr | None = Field(None, validation_alias=AliasChoices(
        "VIGIL_MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_PASSWORD"))
    mlflow_artifact_root: str | None = None  # default: <var_dir>/mlartifacts
    mlflow_experiment: str = "vigil"

    # The model being watched by default (every table is keyed by model name)
    model_name: str = "loan-default"
    champion_alias: str = "champion"
    # the models the API serves, comma-separated (VIGIL_SERVED_MODELS=loan-default,churn): each at
    # POST /predict/<name> from its own @champion, with its own release and alias poller;
    # VIGIL_MODEL_NAME is always among them and also answers POST /predict (``served_model_names``)
    served_models: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # where `vigil train` and the training DAG send a version that beats the champion offline:
    # "canary" (a canary release at VIGIL_RELEASE_DEFAULT_SHARE, ended by the watchdog's judge),
    # "champion" (@champion at once) or "none" (registered only); a first version becomes champion
    new_version: Literal["canary", "champion", "none"] = "canary"

    # Serving
    api_url: str = "http://127.0.0.1:8000"
    dashboard_url: str = "http://127.0.0.1:8501"
    # who may read the dashboard: "login" (default) an operator or an OIDC viewer; "open" anyone
    # who reaches it (the embedded demo, on 127.0.0.1, says so)
    dashboard_access: Literal["open", "login"] = "login"
    # the shared operator token: a bootstrap (per-operator credentials are keys with the operator scope)
    operator_token: SecretStr | None = None
    # /predict and /feedback take requests without a client key (X-Vigil-Key): the embedded demo
    # only; a request that sends a key is still checked. Said at start and on /health.
    open_access: bool = False
    # the key this process sends as X-Vigil-Key (the Gradio page, vigil simulate); never on argv
    client_key: SecretStr | None = None
    key_refresh_seconds: float = Field(2.0, gt=0)  # a key made or revoked takes effect within this
    # /feedback waits at least this long for a prediction the log has not written yet before its 404
    # (longer while this process's own log still holds rows taken before the label: api/feedback.py)
    feedback_wait_seconds: float = Field(5.0, ge=0)
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
    shadow_queue: int = Field(1024, ge=1)  # shadow jobs waiting for the challenger; more are dropped, counted

    # Monitoring windows
    window_minutes: int = Field(5, ge=1)  # also how often the vigil_monitoring DAG runs
    # a window's Evidently HTML report (the drift page's detail; seconds of CPU each) is made when a
    # feature drifted in it, and otherwise for the window starting each period of this many minutes
    # (at most the window length: every window)
    report_every_minutes: int = Field(60, ge=1)
    drift_sample_rows: int = 5_000

    # Watchdog: its own section, read from the environment when the settings are
    watchdog: WatchdogPolicy = Field(default_factory=WatchdogPolicy)

    # Slack: off unless a bot token or an incoming webhook is set
    slack_bot_token: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    slack_channel: str = "#vigil-oncall"
    slack_base_url: str | None = None  # tests point the SDK at a local fake Slack
    renotify_minutes: int = 60
    alert_routes_file: Path | None = None  # Slack/webhook/PagerDuty/e-mail routes (TOML or YAML)

    # Outages and silences: MLflow client limits, grace periods, the stale-watchdog threshold
    reliability: ReliabilityPolicy = Field(default_factory=ReliabilityPolicy)

    # Releases (canary and shadow challengers): their own section, VIGIL_RELEASE_*
    release: ReleasePolicy = Field(default_factory=ReleasePolicy)

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

    @field_validator("served_models", mode="before")
    @classmethod
    def _model_list(cls, value: Any) -> Any:
        names = value.split(",") if isinstance(value, str) else value
        if not isinstance(names, list):
            return names
        names = [name.strip() if isinstance(name, str) else name for name in names]
        for name in names:
            if isinstance(name, str) and ("/" in name or len(name) > 200):
                raise ValueError(f"{name[:60]!r} cannot be a served model's name (no '/', at most 200 characters)")
        return [name for name in names if name != ""]

    @property
    def served_model_names(self) -> list[str]:
        """The models the API serves: ``model_name`` (the default, answered at /predict) first."""
        return list(dict.fromkeys([self.model_name, *self.served_models]))

    @property
    def read_url(self) -> str:
        """Where read-only consumers read Vigil's store: the read-only role if one is set."""
        return self.database_read_url or self.database_url

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
