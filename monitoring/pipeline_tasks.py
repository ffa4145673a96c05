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
def monitored_models() -> list[str]:
    """The models the monitoring DAG fans out over: those Vigil has registered versions of."""
    from monitoring.store import window_queries
    from monitoring.store.engine import get_engine

    with get_engine(get_settings().database_url).connect() as connection:
        return window_queries.known_models(connection)


def monitor_interval(start: datetime, end: datetime, model_name: str | None = None) -> dict[str, Any]:
    """Compute every window ending in the interval (and refresh windows with late feedback), for
    one model (a mapped task's) or every known model."""
    from monitoring.metrics.window_pipeline import compute_windows

    runtime = Runtime.from_environment()
    return compute_windows(runtime, model_name=model_name, start=_utc(start), end=_utc(end)).as_dict()


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


def watched_models() -> list[str]:
    """The models the watchdog DAG fans out over: those whose champion Vigil watches."""
    from monitoring.watchdog.evaluation import watched_models as watched

    settings = get_settings()
    return watched(settings.database_url, settings.champion_alias)


def watchdog_model(model_name: str) -> list[str]:
    """Evaluate and act on one model (a mapped task); raise when its evaluation failed, so the
    mapped task (and the run) says so while the other models' tasks go on."""
    from monitoring.watchdog.evaluation import evaluate_and_act

    outcomes = evaluate_and_act(Runtime.from_environment(), model_name=model_name)
    failed = [o for o in outcomes if o.status == "error"]
    if failed:
        raise RuntimeError(f"watchdog: evaluating {model_name} failed: {'; '.join(failed[0].notes)}")
    return [str(o) for o in outcomes]


def watchdog_notify() -> list[str]:
    """After every model's evaluation (failed or not): re-notify alerts still firing, deliver the outbox."""
    from monitoring.watchdog.loop import remind_and_deliver

    return remind_and_deliver(Runtime.from_environment())


def check_watchdog() -> dict[str, Any]:
    """Raise (or resolve) ``watchdog_stalled``, then deliver the outbox: the usual deliverer is
    the watchdog itself, so this path must not wait for it."""
    from monitoring.alerts.route_delivery import deliver_outbox
    from monitoring.watchdog.heartbeat import check_and_alert

    settings = get_settings()
    found = check_and_alert(settings.database_url, settings.reliability.watchdog_stale_seconds)
    report, routed = deliver_outbox(settings.database_url, settings)
    return {"stale": found.stale, "said": found.describe(),
            "delivery": "; ".join([str(report), *map(str, routed)])}


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
