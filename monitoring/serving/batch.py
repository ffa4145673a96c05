"""Batch scoring: score a file of records (the demo generator by default) with the champion.

The predictions go to an output file (with the version that made them) and into the prediction
log with ``source="batch"``, so the monitoring run sees them like API traffic. A batch is keyed
on its data interval: prediction ids are derived from the interval and the row number and
written with an upsert, so re-running an interval rewrites the same rows instead of adding new
ones. The first run's time and latency stand; a re-run with another champion updates the version
and the predictions.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from monitoring.labels import label_text
from monitoring.registry.mlflow_registry import RegistryError
from monitoring.runtime import Runtime
from monitoring.serving.servable import load_servable
from monitoring.settings import Settings
from monitoring.store.engine import utcnow
from monitoring.store.prediction_rows import upsert_batch_predictions
from monitoring.training import datasets
from monitoring.training.datasets import DataError

SOURCE = "batch"
_ID_NAMESPACE = uuid.UUID("6f1c5e0a-8d1b-4b7e-9a57-3c1f2f8e4b10")


@dataclass(frozen=True)
class BatchResult:
    model_name: str
    version: int
    rows: int
    output_path: str
    interval_start: str
    interval_end: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def prediction_id(model_name: str, start: datetime, end: datetime, row: int) -> str:
    """The same id for the same row of the same interval, on every run."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{model_name}|{start.isoformat()}|{end.isoformat()}|{row}"))


def demo_records(start: datetime, rows: int) -> pd.DataFrame:
    """New applications for the interval: the same ones every time the interval is scored."""
    return datasets.generate_features(rows, seed=int(start.timestamp()) % 2**31)


def read_records(path: str | Path) -> pd.DataFrame:
    """Records to score from a CSV or parquet file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such batch input file: {path}")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise DataError(f"{path} is not a readable CSV or parquet file: {error}") from error
    if frame.empty:
        raise DataError(f"{path} has no rows to score")
    return frame


def score_batch(
    runtime: Runtime,
    *,
    interval_start: datetime,
    interval_end: datetime,
    input_path: str | Path | None = None,
    output_path: str | Path | None = None,
    model_name: str | None = None,
    demo_rows: int = 500,
) -> BatchResult:
    """Score the interval's records with the champion; write the output file and log the predictions."""
    url, registry, settings = runtime.store_url, runtime.registry, runtime.settings
    if interval_end <= interval_start:
        raise ValueError(f"batch interval end {interval_end.isoformat()} is not after its start")
    name = model_name or settings.model_name
    version = registry.alias_version(name, settings.champion_alias)
    if version is None:
        raise RegistryError(f"{name} has no @{settings.champion_alias} version to score with")
    records = read_records(input_path) if input_path else demo_records(interval_start, demo_rows)
    model = load_servable(registry, name, version)
    columns = model.schema.names
    missing = [c for c in columns if c not in records.columns]
    if missing:
        raise DataError(f"batch records lack the columns {name} v{version} needs: {missing}")
    features = records[columns]

    started = time.perf_counter()
    scored = model.score_frame(features)
    labels, scores = scored.labels, scored.scores
    latency_ms = (time.perf_counter() - started) * 1000.0 / len(features)

    ids = [prediction_id(name, interval_start, interval_end, i) for i in range(len(features))]
    output = features.assign(prediction=[label_text(v) for v in labels],
                             score=scores, model_name=name, model_version=version)
    output.insert(0, "prediction_id", ids)
    path = Path(output_path) if output_path else _default_output(settings, name, interval_start, interval_end)
    _write_atomically(output, path)
    _log(url, name, version, ids, features, output, latency_ms)
    return BatchResult(name, version, len(output), str(path.resolve()), interval_start.isoformat(),
                       interval_end.isoformat())


def _default_output(settings: Settings, name: str, start: datetime, end: datetime) -> Path:
    return settings.var_dir / "batch" / name / f"{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}.parquet"


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    if path.suffix == ".csv":
        frame.to_csv(partial, index=False)
    else:
        frame.to_parquet(partial, index=False)
    os.replace(partial, path)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN
    return value.item() if hasattr(value, "item") else value


def _log(url: str, name: str, version: int, ids: list[str], features: pd.DataFrame,
         output: pd.DataFrame, latency_ms: float) -> None:
    now = utcnow()
    records = features.astype(object).to_dict("records")
    rows = [
        {"id": pid, "model_name": name, "model_version": version, "created_at": now,
         "features": {k: _json_value(v) for k, v in record.items()}, "prediction": label,
         "score": score, "latency_ms": latency_ms, "status": "ok", "error": None, "source": SOURCE}
        for pid, record, label, score in zip(ids, records, output["prediction"], output["score"], strict=False)
    ]
    upsert_batch_predictions(url, rows)
