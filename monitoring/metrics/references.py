"""The reference data a version's drift is measured against: found in Vigil's store, fetched from
MLflow once and cached under ``<var_dir>/references/``.

A reference given to Vigil later (``vigil adopt``: a file, the version's logged dataset, or its
first healthy production window) is checked against the version's input signature
(``fit_signature``) and kept in MLflow (``keep_reference``), so that every process finds it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from monitoring.runtime import Runtime
from monitoring.store import history
from monitoring.store.engine import session_scope


@dataclass(frozen=True)
class Reference:
    frame: pd.DataFrame
    numerical: list[str]
    categorical: list[str]


def split_runs_uri(uri: str) -> tuple[str, str]:
    """``runs:/<run id>/<artifact path>`` -> (run id, artifact path)."""
    if not uri.startswith("runs:/"):
        raise ValueError(f"reference uri {uri!r} is not a runs:/<run>/<path> uri")
    run_id, _, artifact = uri[len("runs:/"):].strip("/").partition("/")
    if not run_id or not artifact:
        raise ValueError(f"reference uri {uri!r} names no run or no artifact")
    return run_id, artifact


def feature_kinds(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Numerical and categorical columns, by dtype."""
    numerical = [c for c in frame.columns
                 if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    return numerical, [c for c in frame.columns if c not in numerical]


def load_reference(runtime: Runtime, model_name: str, version: int) -> Reference | None:
    """The version's reference data (cached under ``<var_dir>/references``), or None when Vigil recorded none."""
    registry, cache_dir = runtime.registry, runtime.settings.var_dir / "references"
    with session_scope(runtime.store_url) as session:
        row = history.reference_for(session, model_name, version)
        uri = row.uri if row is not None else None
    if uri is None or uri == history.PENDING_REFERENCE:
        return None
    run_id, artifact = split_runs_uri(uri)
    target = cache_dir / model_name / f"v{version}"
    local = target / artifact
    if not local.is_file():
        local = registry.download_artifact(run_id, artifact, target)
    frame = pd.read_parquet(local)
    numerical, categorical = feature_kinds(frame)
    for name in categorical:
        frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
        frame[name] = frame[name].map(lambda value: None if value is None else str(value))
    return Reference(frame, numerical, categorical)


MAX_REFERENCE_ROWS = 50_000  # a bounded sample, as for the versions Vigil trains
_NUMERIC_TYPES = ("double", "float", "long", "integer")


def signature_kinds(columns: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Numerical and categorical input names from a signature (``Registry.input_columns``)."""
    numerical = [c["name"] for c in columns if c.get("type") in _NUMERIC_TYPES]
    return numerical, [c["name"] for c in columns if c["name"] not in numerical]


def fit_signature(frame: pd.DataFrame, columns: list[dict[str, Any]], where: str) -> pd.DataFrame:
    """The frame's signature columns, checked: every input present, numeric where declared numeric.

    Other columns (a target, an id) are left out. Raises ValueError naming what does not match.
    """
    names = [c["name"] for c in columns]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ValueError(f"{where} lacks the signature's input column(s) {', '.join(missing)} "
                         f"(it has {', '.join(map(str, frame.columns)) or 'no columns'})")
    if frame.empty:
        raise ValueError(f"{where} has no rows")
    numerical, categorical = signature_kinds(columns)
    fitted = frame[names].copy()
    for name in categorical:
        fitted[name] = fitted[name].map(lambda value: None if pd.isna(value) else str(value))
    for name in numerical:
        values = pd.to_numeric(fitted[name], errors="coerce")
        if (values.isna() & fitted[name].notna()).any():
            raise ValueError(f"{where}: column {name!r} must be numeric (the signature says "
                             f"{next(c['type'] for c in columns if c['name'] == name)})")
        fitted[name] = values
    return fitted.sample(n=min(MAX_REFERENCE_ROWS, len(fitted)), random_state=0) \
        if len(fitted) > MAX_REFERENCE_ROWS else fitted


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file (by its suffix); ValueError when it cannot be read."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ValueError(f"reference file {path} must be a .csv or .parquet file")
    try:
        return pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except Exception as error:  # any reading problem is the user's to fix
        raise ValueError(f"cannot read reference file {path}: {type(error).__name__}: {error}") from error


def keep_reference(runtime: Runtime, model_name: str, version: int, frame: pd.DataFrame) -> str:
    """Keep ``frame`` in MLflow as the version's reference; its ``runs:/`` uri (to record)."""
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "reference.parquet"
        frame.to_parquet(file, index=False)
        return runtime.registry.log_reference(model_name, version, file)


MIN_WINDOW_REFERENCE_ROWS = 100  # a production window taken as the reference has at least this many


def take_first_healthy_window(runtime: Runtime, model_name: str, version: int,
                              read_window: Callable[[list[str], list[str]], pd.DataFrame]) -> int:
    """Take a pending reference from this window of the version, once the version is healthy.

    ``read_window(numerical, categorical)`` reads the window's input features. Returns the rows
    recorded as the reference (0: nothing was pending, the version is not healthy yet, or the
    window is too small).
    """
    url = runtime.store_url
    with session_scope(url) as session:
        row = history.reference_for(session, model_name, version)
        pending = row is not None and row.uri == history.PENDING_REFERENCE
    if not pending or history.health_states(url, model_name).get(version) != "healthy":
        return 0
    columns = runtime.registry.input_columns(model_name, version)
    frame = read_window(*signature_kinds(columns))
    if len(frame) < MIN_WINDOW_REFERENCE_ROWS:
        return 0
    frame = fit_signature(frame, columns, f"{model_name} v{version}'s production window")
    uri = keep_reference(runtime, model_name, version, frame)
    with session_scope(url) as session:
        row = history.reference_for(session, model_name, version)
        if row is not None and row.uri == history.PENDING_REFERENCE:  # not taken meanwhile
            history.record_reference(session, model_name=model_name, version=version, uri=uri,
                                     rows=len(frame))
    return len(frame)
