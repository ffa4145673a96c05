"""The training pipeline as task-sized steps: ingest, validate, train, evaluate, register, promote.

Each step takes and returns small JSON-able dicts (file paths, numbers) so Airflow can pass them
between tasks; the data and the fitted model travel as files under
``<var_dir>/pipelines/training/<model>/<data interval>/``. A run is keyed on its data interval:
the demo data is seeded by it, registration finds the version an earlier attempt of the same
interval registered instead of adding another, and the promote step acts only when the
candidate beats the champion evaluated on the same holdout: it starts a canary release of it
(``VIGIL_NEW_VERSION=canary``, the default), moves ``@champion`` to it (``champion``) or leaves
it registered (``none``); a first version becomes champion. Running an interval twice changes
nothing: a version already champion, or already released once, is left as it is.
"""

from __future__ import annotations

import pickle
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from monitoring.metrics.references import feature_kinds, load_reference
from monitoring.registry.mlflow_registry import RegistryError
from monitoring.registry.promotion import move_alias_in
from monitoring.runtime import Runtime
from monitoring.serving.servable import load_servable
from monitoring.settings import Settings
from monitoring.store import history
from monitoring.store.engine import lock_model, session_scope
from monitoring.store.releases import version_release
from monitoring.training import datasets, modeling, validation
from monitoring.training.trainer import (
    REFERENCE_ARTIFACT,
    REFERENCE_ROWS,
    decide_destination,
    record_new_version,
    send_to_canary,
)

ACTOR = "airflow:vigil_training"
SPLIT_SEED = 0


def interval_key(start: datetime, end: datetime) -> str:
    return f"{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}"


def workdir(settings: Settings, model_name: str, start: datetime, end: datetime) -> Path:
    path = (settings.var_dir / "pipelines" / "training" / model_name / interval_key(start, end)).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def ingest(
    settings: Settings, *, model_name: str, interval_start: datetime, interval_end: datetime,
    data_path: str | None = None, target: str | None = None, rows: int = 20_000,
) -> dict[str, Any]:
    """Copy the interval's training data (the user's CSV, or demo data seeded by the interval)."""
    if data_path:
        if not target:
            raise datasets.DataError("a target column is needed with a data file")
        path = Path(data_path)
        if not path.is_file():
            raise datasets.DataError(f"no such training data file: {path}")
        try:
            frame = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise datasets.DataError(f"{path} is not a readable CSV file: {error}") from error
        origin = str(path)
    else:
        frame = datasets.generate(rows, seed=int(interval_start.timestamp()) % 2**31).frame
        target, origin = datasets.TARGET, "demo"
    out = workdir(settings, model_name, interval_start, interval_end) / "raw.parquet"
    frame.to_parquet(out, index=False)
    return {"path": str(out), "target": target, "origin": origin, "rows": len(frame)}


def validate(runtime: Runtime, *, model_name: str,
             ingested: dict[str, Any]) -> dict[str, Any]:
    """Schema (the champion's features must be there), missing values and ranges; raises ValidationError."""
    registry, settings = runtime.registry, runtime.settings
    frame = pd.read_parquet(ingested["path"])
    expected_numeric: list[str] = []
    expected_categorical: list[str] = []
    champion = registry.alias_version(model_name, settings.champion_alias)
    if champion is not None:
        reference = load_reference(runtime, model_name, champion)
        if reference is not None:
            expected_numeric, expected_categorical = reference.numerical, reference.categorical
    report = validation.validate(frame, ingested["target"], expected_numeric=expected_numeric,
                                 expected_categorical=expected_categorical)
    return {**ingested, "task": report.task, "numeric": report.numeric,
            "categorical": report.categorical, "valid_rows": report.rows}


def train(settings: Settings, *, model_name: str, validated: dict[str, Any]) -> dict[str, Any]:
    """Fit a pipeline on the training split; keep the model, the holdout and the reference sample."""
    dataset = datasets.from_frame(pd.read_parquet(validated["path"]), validated["target"],
                                  origin=validated["origin"])
    train_frame, holdout = modeling.split(dataset, SPLIT_SEED)
    model = modeling.build_pipeline(dataset).fit(train_frame[dataset.features], train_frame[dataset.target])
    folder = Path(validated["path"]).parent
    paths = {name: folder / f"{name}" for name in ("model.pkl", "holdout.parquet", "reference.parquet")}
    paths["model.pkl"].write_bytes(pickle.dumps(model))
    holdout.to_parquet(paths["holdout.parquet"], index=False)
    train_frame[dataset.features].sample(n=min(REFERENCE_ROWS, len(train_frame)), random_state=SPLIT_SEED) \
        .to_parquet(paths["reference.parquet"], index=False)
    return {**validated, "model_path": str(paths["model.pkl"]), "holdout_path": str(paths["holdout.parquet"]),
            "reference_path": str(paths["reference.parquet"]), "train_rows": len(train_frame),
            "holdout_rows": len(holdout), "features": dataset.features}


def evaluate(runtime: Runtime, *, model_name: str,
             trained: dict[str, Any]) -> dict[str, Any]:
    """The candidate's holdout metrics and the current champion's primary metric on the same holdout."""
    registry, settings = runtime.registry, runtime.settings
    holdout = pd.read_parquet(trained["holdout_path"])
    model = pickle.loads(Path(trained["model_path"]).read_bytes())
    task, target, features = trained["task"], trained["target"], trained["features"]
    metrics = modeling.evaluate(model, task, holdout, features, target)
    metric = modeling.PRIMARY_METRIC[task]
    champion = registry.alias_version(model_name, settings.champion_alias)
    champion_score = None
    if champion is not None:
        try:
            champion_model = load_servable(registry, model_name, champion)
            champion_score = modeling.evaluate(champion_model, task, holdout, features, target)[metric]
        except (ValueError, KeyError) as error:
            raise RegistryError(f"champion version {champion} cannot score this data ({error})") from error
    return {"metrics": metrics, "primary_metric": metric, "champion_version": champion,
            "champion_score": champion_score}


def register(runtime: Runtime, *, model_name: str,
             interval_start: datetime, interval_end: datetime, trained: dict[str, Any],
             evaluation: dict[str, Any]) -> dict[str, Any]:
    """Register the candidate (once per data interval) with its reference data; returns its version."""
    url, registry = runtime.store_url, runtime.registry
    key = interval_key(interval_start, interval_end)
    existing = _registered_for(url, model_name, key)
    if existing is not None:
        return {"version": existing, "new": False}
    model = pickle.loads(Path(trained["model_path"]).read_bytes())
    reference = pd.read_parquet(trained["reference_path"])
    metrics = evaluation["metrics"]
    numeric, categorical = feature_kinds(reference)
    info = registry.log_and_register(
        model=model, model_name=model_name, input_example=reference.head(5),
        params={"task": trained["task"], "estimator": type(model[-1]).__name__, "rows": trained["rows"],
                "seed": SPLIT_SEED, "data": trained["origin"], "target": trained["target"],
                "numeric": ",".join(numeric), "categorical": ",".join(categorical), "data_interval": key},
        metrics={**metrics, "train_rows": float(trained["train_rows"]),
                 "holdout_rows": float(trained["holdout_rows"])},
        tags={"vigil.data_interval": key},
        extra_artifacts={REFERENCE_ARTIFACT: Path(trained["reference_path"])},
    )
    with session_scope(url) as session:
        lock_model(session, model_name)
        record_new_version(session, info, metrics=metrics, reference_rows=len(reference), actor=ACTOR,
                           reason=f"trained on the data of {key}", evidence={**evaluation, "data_interval": key})
    return {"version": info.version, "new": True}


def _registered_for(url: str, model_name: str, key: str) -> int | None:
    with session_scope(url) as session:
        for event in history.events(session, model_name, limit=10_000):
            if event.kind == "train" and (event.evidence or {}).get("data_interval") == key:
                return event.to_version
    return None


def promote_if_better(runtime: Runtime, *, model_name: str,
                      registered: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    """Send the candidate on if it beat the champion it was compared with: to a canary release,
    or to ``@champion`` (``settings.new_version``); a first version becomes champion."""
    url, registry, settings = runtime.store_url, runtime.registry, runtime.settings
    version = registered["version"]
    metric = evaluation["primary_metric"]
    candidate = evaluation["metrics"][metric]
    alias = settings.champion_alias

    def outcome(destination: str, reason: str, release: int | None = None) -> dict[str, Any]:
        return {"promoted": destination == "champion", "destination": destination, "version": version,
                "release": release, "reason": reason}

    with session_scope(url) as session:
        lock_model(session, model_name)
        current = registry.alias_version(model_name, alias)
        if current == version:
            return outcome("none", f"version {version} is already @{alias}")
        if current != evaluation["champion_version"]:
            return outcome("none", f"@{alias} moved to {current} after the evaluation; not promoting")
        earlier = version_release(session, model_name, version)
        if earlier is not None:
            return outcome("none", f"version {version} already had a {earlier.mode} release "
                                   f"(release {earlier.id}, {earlier.state})", earlier.id)
        destination, reason = decide_destination(metric, candidate, evaluation["champion_score"], None,
                                                 settings.new_version)
        if destination == "champion":
            move_alias_in(session, registry, model_name=model_name, to_version=version, actor=ACTOR,
                          reason=reason, kind="promote",
                          evidence={"numbers": {metric: round(candidate, 4),
                                                f"champion {metric}": evaluation["champion_score"]}})
    if destination != "canary":
        return outcome(destination, reason)
    release, reason = send_to_canary(runtime, model_name=model_name, version=version, actor=ACTOR, reason=reason)
    return outcome("canary" if release is not None else "none", reason, release)
