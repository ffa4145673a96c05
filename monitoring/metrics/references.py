"""The reference data a version's drift is measured against: found in Vigil's store, fetched from
MLflow once and cached under ``<var_dir>/references/``.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    if uri is None:
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
