"""The functions Airflow tasks call: one per task, each building its runtime from the environment.

Each takes the task's data interval (and small JSON-able inputs) and returns small JSON-able
results for XCom, so the DAG files stay declarations. Heavy libraries are imported by the
functions they call, never when a DAG file is parsed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitoring.runtime import Runtime
from monitoring.settings import get_settings


def _utc(moment: datetime) -> datetime:
    """A plain UTC datetime (Airflow hands tasks pendulum's subclass)."""
    return datetime.fromtimestamp(moment.timestamp(), tz=UTC)


# -- monitoring ------------------------------------------------------------------------------
def monitor_interval(start: datetime, end: datetime) -> dict[str, Any]:
    """Compute every window ending in the interval (and refresh windows with late feedback)."""
    from monitoring.metrics.window_pipeline import compute_windows

    runtime = Runtime.from_environment()
    return compute_windows(runtime, start=_utc(start), end=_utc(end)).as_dict()


# -- batch scoring ---------------------------------------------------------------------------
def score_interval(start: datetime, end: datetime, input_path: str | None = None,
                   output_path: str | None = None, rows: int = 500) -> dict[str, Any]:
    """Score the interval's batch (a file, or demo records seeded by the interval) with the champion."""
    from monitoring.serving.batch import score_batch

    runtime = Runtime.from_environment()
    return score_batch(runtime, interval_start=_utc(start), interval_end=_utc(end),
                       input_path=input_path, output_path=output_path, demo_rows=rows).as_dict()


# -- watchdog --------------------------------------------------------------------------------
def watchdog_once() -> list[str]:
    """One watchdog run, the same as ``vigil watch``'s: evaluate and act, re-notify, deliver Slack."""
    from monitoring.watchdog.loop import run_once

    return run_once(Runtime.from_environment(), quiet=False)


def check_watchdog() -> dict[str, Any]:
    """Raise (or resolve) ``watchdog_stalled``, then deliver the outbox: the usual deliverer is
    the watchdog itself, so this path must not wait for it."""
    from monitoring.alerts.delivery import deliver_pending
    from monitoring.watchdog.heartbeat import check_and_alert

    settings = get_settings()
    found = check_and_alert(settings.database_url, settings.reliability.watchdog_stale_seconds)
    report = deliver_pending(settings.database_url, settings=settings)
    return {"stale": found.stale, "said": found.describe(), "delivery": str(report)}


# -- maintenance -----------------------------------------------------------------------------
def prune_store(now: datetime | None = None) -> dict[str, Any]:
    """Apply the retention: partitions made ahead, due rows, partitions and report files deleted."""
    from monitoring.retention.prune import prune

    settings = get_settings()
    report = prune(settings.database_url, settings, now=_utc(now) if now else None)
    return {**report.as_dict(), "lines": report.lines()}


# -- training --------------------------------------------------------------------------------
def training_ingest(start: datetime, end: datetime, data_path: str | None = None,
                    target: str | None = None, rows: int = 20_000) -> dict[str, Any]:
    from monitoring.training import pipeline

    settings = get_settings()
    return pipeline.ingest(settings, model_name=settings.model_name, interval_start=_utc(start),
                                    interval_end=_utc(end), data_path=data_path, target=target, rows=rows)


def training_validate(ingested: dict[str, Any]) -> dict[str, Any]:
    from monitoring.training import pipeline

    runtime = Runtime.from_environment()
    return pipeline.validate(runtime, model_name=runtime.settings.model_name,
                                      ingested=ingested)


def training_train(validated: dict[str, Any]) -> dict[str, Any]:
    from monitoring.training import pipeline

    settings = get_settings()
    return pipeline.train(settings, model_name=settings.model_name, validated=validated)


def training_evaluate(trained: dict[str, Any]) -> dict[str, Any]:
    from monitoring.training import pipeline

    runtime = Runtime.from_environment()
    return pipeline.evaluate(runtime, model_name=runtime.settings.model_name, trained=trained)


def training_register(start: datetime, end: datetime, trained: dict[str, Any],
                      evaluation: dict[str, Any]) -> dict[str, Any]:
    from monitoring.training import pipeline

    runtime = Runtime.from_environment()
    return pipeline.register(runtime, model_name=runtime.settings.model_name,
                                      interval_start=_utc(start), interval_end=_utc(end), trained=trained,
                                      evaluation=evaluation)


def training_promote(registered: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    from monitoring.training import pipeline

    runtime = Runtime.from_environment()
    return pipeline.promote_if_better(runtime, model_name=runtime.settings.model_name,
                                               registered=registered, evaluation=evaluation)
