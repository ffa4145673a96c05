"""Reads of the prediction log and the feedback for one monitoring window (SQLite and PostgreSQL).

Only the columns a metric needs are read. On PostgreSQL the latency percentiles are aggregated in
SQL (``percentile_cont``) and feature columns are extracted from the JSON in SQL and streamed with
``COPY``, so a window of a million predictions never becomes a million Python objects.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, and_, case, func, select

from monitoring.tables import Feedback, Prediction, VersionHealth
from monitoring.windows import PERCENTILES, Window, latency_percentiles

BATCH_SOURCE = "batch"


@dataclass(frozen=True)
class Traffic:
    """What one model version served in one window."""

    model_name: str
    version: int
    requests: int
    errors: int
    latency_samples: int
    percentiles: dict[str, float] = field(default_factory=dict)


def _in_window(window: Window, model_name: str | None):
    condition = and_(Prediction.created_at >= window.start, Prediction.created_at < window.end)
    if model_name is not None:
        condition = and_(Prediction.model_name == model_name, condition)
    return condition


def traffic(connection: Connection, window: Window, model_name: str | None) -> list[Traffic]:
    """Requests, errors and online latency percentiles of every version that served in the window."""
    online = Prediction.source != BATCH_SOURCE
    columns = [
        Prediction.model_name,
        Prediction.model_version,
        func.count().label("requests"),
        func.count().filter(Prediction.status == "error").label("errors"),
        func.count().filter(online).label("latency_samples"),
    ]
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        columns += [
            func.percentile_cont(q).within_group(Prediction.latency_ms).filter(online).label(name)
            for name, q in PERCENTILES.items()
        ]
    rows = connection.execute(
        select(*columns).where(_in_window(window, model_name))
        .group_by(Prediction.model_name, Prediction.model_version)
        .order_by(Prediction.model_name, Prediction.model_version)
    ).mappings().all()
    if not postgres:
        latencies = _online_latencies(connection, window, model_name)
    result = []
    for row in rows:
        key = (row["model_name"], row["model_version"])
        if postgres:
            percentiles = {name: float(row[name]) for name in PERCENTILES if row[name] is not None}
        else:
            percentiles = latency_percentiles(latencies.get(key, []))
        result.append(Traffic(row["model_name"], int(row["model_version"]), int(row["requests"]),
                              int(row["errors"]), int(row["latency_samples"]), percentiles))
    return result


def _online_latencies(connection: Connection, window: Window, model_name: str | None) -> dict:
    rows = connection.execute(
        select(Prediction.model_name, Prediction.model_version, Prediction.latency_ms)
        .where(_in_window(window, model_name), Prediction.source != BATCH_SOURCE)
    ).all()
    grouped: dict[tuple[str, int], list[float]] = {}
    for name, version, latency in rows:
        grouped.setdefault((name, version), []).append(latency)
    return grouped


def labelled(connection: Connection, window: Window, model_name: str | None) -> pd.DataFrame:
    """Successful predictions of the window that have feedback: model, version, prediction, score, label."""
    query = (
        select(Prediction.model_name, Prediction.model_version.label("version"),
               Prediction.prediction, Prediction.score, Feedback.label)
        .join(Feedback, Feedback.prediction_id == Prediction.id)
        .where(_in_window(window, model_name), Prediction.status == "ok")
    )
    return pd.DataFrame(connection.execute(query).all(),
                        columns=["model_name", "version", "prediction", "score", "label"])


def predictions_with_feedback_received(
    connection: Connection, received_from: datetime, received_to: datetime, model_name: str | None
) -> list[tuple[str, datetime]]:
    """(model, prediction time) of every prediction whose feedback arrived in the period."""
    query = (
        select(Prediction.model_name, Prediction.created_at)
        .join(Feedback, Feedback.prediction_id == Prediction.id)
        .where(Feedback.received_at >= received_from, Feedback.received_at < received_to)
    )
    if model_name is not None:
        query = query.where(Prediction.model_name == model_name)
    return [(name, created) for name, created in connection.execute(query).all()]


def features(
    connection: Connection, window: Window, model_name: str, version: int,
    numerical: list[str], categorical: list[str],
) -> pd.DataFrame:
    """The input features of the version's successful predictions in the window, one column each.

    Numerical values that are not numbers become missing (drift ignores missing values).
    """
    postgres = connection.dialect.name == "postgresql"
    columns = [_number(Prediction.features[name], postgres).label(name) for name in numerical]
    columns += [Prediction.features[name].as_string().label(name) for name in categorical]
    query = select(*columns).where(
        _in_window(window, model_name), Prediction.model_version == version,
        Prediction.status == "ok",
    )
    names = [*numerical, *categorical]
    if postgres and connection.dialect.driver == "psycopg2":
        frame = _copy_frame(connection, query, numerical, categorical)
    else:
        frame = pd.DataFrame(connection.execute(query).all(), columns=names)
        for name in numerical:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
        for name in categorical:  # SQLite hands JSON numbers back as numbers
            frame[name] = frame[name].map(lambda value: None if value is None else str(value))
    for name in categorical:
        frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def _number(element, postgres: bool):
    """A JSON value as a float; on PostgreSQL only JSON numbers, so a stray string cannot fail the query."""
    if postgres:
        return case((func.json_typeof(element) == "number", element.as_float()))
    return element.as_float()


def _copy_frame(
    connection: Connection, query, numerical: list[str], categorical: list[str]
) -> pd.DataFrame:
    """Run ``query`` through PostgreSQL's COPY ... TO STDOUT (CSV) and parse it with pyarrow."""
    compiled = query.compile(dialect=connection.dialect)
    cursor = connection.connection.driver_connection.cursor()
    try:
        sql = cursor.mogrify(compiled.string, compiled.params).decode()
        buffer = io.BytesIO()
        cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
    finally:
        cursor.close()
    buffer.seek(0)
    dtypes = {name: "float64" for name in numerical} | {name: "string" for name in categorical}
    return pd.read_csv(buffer, engine="pyarrow", dtype=dtypes, keep_default_na=False,
                       na_values=[""])


def version_tasks(connection: Connection, model_names: list[str]) -> dict[tuple[str, int], str]:
    """(model, version) -> "classification" or "regression", from the metrics it was registered with."""
    rows = connection.execute(
        select(VersionHealth.model_name, VersionHealth.version, VersionHealth.eval_metrics)
        .where(VersionHealth.model_name.in_(model_names))
    ).all()
    tasks = {}
    for name, version, metrics in rows:
        if "rmse" in (metrics or {}) or "mae" in (metrics or {}):
            tasks[(name, version)] = "regression"
        elif metrics:
            tasks[(name, version)] = "classification"
    return tasks


def known_models(connection: Connection) -> list[str]:
    """Models Vigil has registered versions of (the monitoring run's default scope)."""
    return list(connection.scalars(select(VersionHealth.model_name).distinct().order_by(VersionHealth.model_name)))
