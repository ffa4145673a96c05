"""Reads of the prediction log and the feedback for one monitoring window (SQLite and PostgreSQL).

Only the columns a metric needs are read, and what SQL can aggregate is aggregated there: the
requests, errors and latency percentiles (``percentile_cont`` on PostgreSQL), the windows that late
feedback touched. On PostgreSQL the labelled rows and the outputs (as CSV) and the feature
documents (as JSON lines) are streamed with ``COPY`` and parsed by pyarrow, so a window of a
million predictions never becomes a million Python objects.

The monitoring run reads features and outputs from the prediction segments first
(``monitoring.store.window_columns``); ``features`` and ``outputs`` here are the JSON path it falls
back to, and the reference the segments are tested against.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, Float, and_, bindparam, case, cast, func, literal, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, array

from monitoring.metrics import latency_sketch
from monitoring.metrics.windows import PERCENTILES, Window, latency_percentiles
from monitoring.store.dialect import is_postgres
from monitoring.store.served import SERVED
from monitoring.store.tables import Feedback, Prediction, UTCDateTime, VersionHealth

BATCH_SOURCE = "batch"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Traffic:
    """What one model version served in one window."""

    model_name: str
    version: int
    requests: int
    errors: int
    latency_samples: int
    percentiles: dict[str, float] = field(default_factory=dict)
    successes: int = 0  # requests answered without an error: the rows drift and outputs read
    # the online latencies in ``monitoring.metrics.latency_sketch``'s buckets: what longer ranges merge
    latency_histogram: dict[int, int] = field(default_factory=dict)


def _in_window(window: Window, model_name: str | None):
    condition = and_(Prediction.created_at >= window.start, Prediction.created_at < window.end, SERVED)
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
        func.count().filter(Prediction.status == "ok").label("successes"),
    ]
    postgres = is_postgres(connection)
    if postgres:  # one sort for all three percentiles
        quantiles = array([literal(q) for q in PERCENTILES.values()])
        columns.append(func.percentile_cont(quantiles, type_=ARRAY(Float)).within_group(Prediction.latency_ms)
                       .filter(online).label("percentiles"))
    rows = connection.execute(
        select(*columns).where(_in_window(window, model_name))
        .group_by(Prediction.model_name, Prediction.model_version)
        .order_by(Prediction.model_name, Prediction.model_version)
    ).mappings().all()
    if postgres:
        histograms = _latency_histograms(connection, window, model_name)
    else:
        latencies = _online_latencies(connection, window, model_name)
        histograms = {key: latency_sketch.histogram(values) for key, values in latencies.items()}
    result = []
    for row in rows:
        key = (row["model_name"], row["model_version"])
        if postgres:
            values = row["percentiles"] or []
            percentiles = {name: float(v) for name, v in zip(PERCENTILES, values, strict=False) if v is not None}
        else:
            percentiles = latency_percentiles(latencies.get(key, []))
        result.append(Traffic(row["model_name"], int(row["model_version"]), int(row["requests"]),
                              int(row["errors"]), int(row["latency_samples"]), percentiles,
                              int(row["successes"]), histograms.get(key, {})))
    return result


def _latency_histograms(connection: Connection, window: Window, model_name: str | None) -> dict:
    """PostgreSQL: the online latencies' bucket counts per version, counted in SQL (SQLite has no
    logarithm by default; ``traffic`` counts them from the latencies it reads there)."""
    index = func.ceil(func.ln(func.greatest(Prediction.latency_ms, latency_sketch.SMALLEST_MS))
                      / literal(latency_sketch.LOG_GAMMA) - 1e-9)
    rows = connection.execute(
        select(Prediction.model_name, Prediction.model_version, index.label("bucket"), func.count())
        .where(_in_window(window, model_name), Prediction.source != BATCH_SOURCE)
        .group_by(Prediction.model_name, Prediction.model_version, index))
    grouped: dict[tuple[str, int], dict[int, int]] = {}
    for name, version, bucket, count in rows:
        grouped.setdefault((name, version), {})[int(bucket)] = int(count)
    return grouped


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
    """Successful predictions of the window that have a trusted label: model, version, prediction,
    score, label (labels from keys without the ``trusted`` scope are not quality evidence)."""
    query = (
        select(Prediction.model_name, Prediction.model_version.label("version"),
               Prediction.prediction, Prediction.score, Feedback.label)
        .join(Feedback, Feedback.prediction_id == Prediction.id)
        .where(_in_window(window, model_name), Prediction.status == "ok", Feedback.trusted.is_(True))
    )
    if is_postgres(connection) and connection.dialect.driver == "psycopg2":
        return _copy_csv_frame(connection, query, {"model_name": "string", "version": "int64",
                                                   "prediction": "string", "score": "float64", "label": "string"})
    return pd.DataFrame(connection.execute(query).all(),
                        columns=["model_name", "version", "prediction", "score", "label"])


def outputs(connection: Connection, window: Window, model_name: str, version: int) -> pd.DataFrame:
    """The predicted class (as logged) and score of the version's successful predictions in the window."""
    query = select(Prediction.prediction, Prediction.score).where(
        _in_window(window, model_name), Prediction.model_version == version, Prediction.status == "ok")
    if is_postgres(connection) and connection.dialect.driver == "psycopg2":
        return _copy_csv_frame(connection, query, {"prediction": "string", "score": "float64"})
    return pd.DataFrame(connection.execute(query).all(), columns=["prediction", "score"])


def copy_out(connection: Connection, query, options: str) -> io.BytesIO:
    """The rows of ``query`` as PostgreSQL's COPY writes them (``options``), in memory."""
    compiled = query.compile(dialect=connection.dialect)
    cursor = connection.connection.driver_connection.cursor()
    try:
        sql = cursor.mogrify(compiled.string, compiled.params).decode()
        buffer = io.BytesIO()
        cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH ({options})", buffer)
    finally:
        cursor.close()
    buffer.seek(0)
    return buffer


def _copy_csv_frame(connection: Connection, query, types: dict[str, str]) -> pd.DataFrame:
    """Plain columns streamed with COPY as CSV and parsed by pyarrow: a million rows in a fraction
    of a second, where row objects through the driver took seconds. SQL NULL (an unquoted empty
    field) is missing; an empty text (quoted) stays an empty text."""
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    buffer = copy_out(connection, query, "FORMAT csv")
    names = list(types)
    if buffer.getbuffer().nbytes == 0:
        return pd.DataFrame({name: pd.Series(dtype=object if kind == "string" else kind) for name, kind in types.items()})
    table = pa_csv.read_csv(buffer, read_options=pa_csv.ReadOptions(column_names=names),
                            convert_options=pa_csv.ConvertOptions(
                                column_types={name: pa.type_for_alias(kind) for name, kind in types.items()},
                                null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False))
    frame = table.to_pandas()
    for name, kind in types.items():
        if kind == "string":
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def labelled_before(connection: Connection, model_name: str, version: int, before: datetime,
                    limit: int) -> pd.DataFrame:
    """The version's newest ``limit`` labelled successful predictions made before ``before``:
    prediction, score, label."""
    query = (
        select(Prediction.prediction, Prediction.score, Feedback.label)
        .join(Feedback, Feedback.prediction_id == Prediction.id)
        .where(Prediction.model_name == model_name, Prediction.model_version == version,
               Prediction.created_at < before, Prediction.status == "ok")
        .order_by(Prediction.created_at.desc()).limit(limit)
    )
    return pd.DataFrame(connection.execute(query).all(), columns=["prediction", "score", "label"])


def windows_with_feedback_received(
    connection: Connection, received_from: datetime, received_to: datetime, model_name: str | None,
    minutes: int,
) -> list[tuple[str, Window]]:
    """(model, window) of every aligned ``minutes`` window holding a prediction whose feedback
    arrived in the period; the database finds the distinct windows (a run with a million late
    labels gets a handful of rows, not a million)."""
    size = minutes * 60
    if is_postgres(connection):
        bucket = "floor(extract(epoch FROM p.created_at) / :size)"
    else:  # SQLite's text times: whole seconds are enough, windows are whole minutes
        bucket = "CAST(strftime('%s', p.created_at) AS INTEGER) / :size"
    # The model is read from the label where it carries it: a filter on ``p.model_name`` alone lets
    # PostgreSQL, on a day's partition it has no statistics for yet, AND the model's whole index
    # into each label's primary-key probe (12.5 s for 6,000 labels seen in benchmarks/ingest_benchmark.py).
    model = "AND COALESCE(f.model_name, p.model_name) = :model " if model_name is not None else ""
    rows = connection.execute(text(
        f"SELECT DISTINCT p.model_name, {bucket} AS bucket FROM predictions p "
        f"JOIN feedback f ON f.prediction_id = p.id "
        f"WHERE f.received_at >= :received_from AND f.received_at < :received_to {model}"
    ).bindparams(bindparam("received_from", type_=UTCDateTime()), bindparam("received_to", type_=UTCDateTime())),
        {"size": size, "received_from": received_from, "received_to": received_to, "model": model_name}).all()
    result = []
    for name, bucket in rows:
        start = _EPOCH + timedelta(seconds=int(bucket) * size)
        result.append((name, Window(start, start + timedelta(minutes=minutes))))
    return result


def features(
    connection: Connection, window: Window, model_name: str, version: int,
    numerical: list[str], categorical: list[str],
) -> pd.DataFrame:
    """The input features of the version's successful predictions in the window, one column each.

    Numerical values that are not JSON numbers become missing (drift ignores missing values),
    so a stray string cannot fail the query.
    """
    postgres = is_postgres(connection)
    names = [*numerical, *categorical]
    rows = [_in_window(window, model_name), Prediction.model_version == version, Prediction.status == "ok"]
    if postgres:
        # the column is json (text): parse each row once as jsonb, not once per feature access
        # (OFFSET 0 keeps the planner from inlining the subquery, which would repeat the cast)
        inner = select(cast(Prediction.features, JSONB).label("doc")).where(*rows).offset(0).subquery()
        doc = inner.c.doc
        columns = [case((func.jsonb_typeof(doc[name]) == "number", doc[name].as_float())).label(name)
                   for name in numerical]
        query = select(*columns, *[doc[name].as_string().label(name) for name in categorical])
    else:
        # SQLite's JSON_EXTRACT keeps each value's type; pandas turns non-numbers into missing
        query = select(*[Prediction.features[name].as_string().label(name) for name in names]).where(*rows)
    frame = None
    if postgres and connection.dialect.driver == "psycopg2":
        raw = select(Prediction.features).where(*rows)
        frame = _copy_json_frame(connection, raw, numerical, categorical)
    if frame is None:
        frame = pd.DataFrame(connection.execute(query).all(), columns=names)
        for name in numerical:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
        for name in categorical:  # SQLite hands JSON numbers back as numbers
            frame[name] = frame[name].map(lambda value: None if value is None else str(value))
    for name in categorical:
        frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def _copy_json_frame(
    connection: Connection, query, numerical: list[str], categorical: list[str]
) -> pd.DataFrame | None:
    """The JSON documents streamed with COPY as newline-delimited JSON, parsed by pyarrow in bulk.

    None when a document does not fit the expected types (a string where a number belongs): the
    caller then extracts value by value in SQL, which turns such values into missing ones.
    """
    import pyarrow as pa
    from pyarrow import json as pa_json

    # CSV with control characters as delimiter and quote writes each document as it is, one per
    # line (valid JSON holds no raw control characters, so nothing is ever quoted or escaped)
    buffer = copy_out(connection, query, "FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01'")
    names = [*numerical, *categorical]
    if buffer.getbuffer().nbytes == 0:
        return pd.DataFrame({name: pd.Series(dtype=float if name in numerical else object) for name in names})
    schema = pa.schema([(name, pa.float64()) for name in numerical] + [(name, pa.string()) for name in categorical])
    try:
        table = pa_json.read_json(buffer, parse_options=pa_json.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="ignore"))
    except pa.ArrowInvalid:
        return None
    return table.to_pandas()[names]


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
