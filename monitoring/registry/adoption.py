"""Onboarding a registered model that Vigil did not train: ``vigil adopt NAME`` and the dashboard.

Adopting a model records its current champion in Vigil's history (an ``adopt`` event: from then
on the watchdog reconciles and judges it like any other), its registration metrics from the
version's MLflow run, and where its drift reference comes from, in this order:

1. the ``--reference`` file (CSV or Parquet) the operator gives;
2. the dataset logged with the version's run (``mlflow.log_input``), when its source can be read;
3. failing both, the version's first healthy production window: the reference is recorded as
   pending and taken by the monitoring run (``monitoring.metrics.references``); the dashboard's
   Registry page says so.

A reference is checked against the version's input signature and kept in MLflow. Its baseline
is its registration accuracy when its run logged one, else a production record (see
``monitoring.watchdog.baselines``); ``Adoption.baseline`` says which. Every refusal (unknown
model, no champion alias, no signature, an unreadable file, columns that do not match) happens
before anything is written; slow MLflow calls are made without the per-model lock.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitoring.events import Adopted
from monitoring.metrics.references import fit_signature, keep_reference, read_table
from monitoring.registry.mlflow_registry import VersionInfo
from monitoring.runtime import Runtime
from monitoring.store import history, outbox
from monitoring.store.engine import Session, lock_model, session_scope, utcnow
from monitoring.watchdog import model_policy
from monitoring.watchdog.baselines import OWN_START_LABELS, production_record

REGISTRATION_METRICS = ("accuracy", "f1", "roc_auc", "rmse", "mae")


class AdoptionError(ValueError):
    """The model cannot be adopted as asked; nothing was written."""


@dataclass(frozen=True)
class Adoption:
    model_name: str
    version: int
    reference: str  # where the drift reference came from (or that it is pending)
    reference_rows: int
    baseline: str  # what the champion's quality is judged against

    def __str__(self) -> str:
        rows = f" ({self.reference_rows:,} rows)" if self.reference_rows else ""
        return (f"{self.model_name}: adopted, @champion is version {self.version}; drift reference: "
                f"{self.reference}{rows}; baseline: {self.baseline}")


def adopt(runtime: Runtime, *, model_name: str, actor: str, reference: Path | None = None,
          channel: str = "cli") -> Adoption:
    """Start watching ``model_name``'s champion (see the module's docstring)."""
    registry, alias = runtime.registry, runtime.settings.champion_alias
    if not model_name.strip():
        raise AdoptionError("give the name of the registered model to adopt")
    if not registry.model_exists(model_name):
        raise AdoptionError(f"no registered model named {model_name!r} in MLflow "
                            f"({registry.tracking_uri})")
    version = registry.alias_version(model_name, alias)
    if version is None:
        raise AdoptionError(
            f"{model_name} has no @{alias} alias: point it at the version in production first "
            f"(MLflow UI, or MlflowClient().set_registered_model_alias({model_name!r}, "
            f"{alias!r}, VERSION))")
    _refuse_if_watched(runtime, model_name)
    info = registry.get_version(model_name, version)
    columns = registry.input_columns(model_name, version)
    if not columns:
        raise AdoptionError(f"{model_name} version {version} has no input signature: log it with "
                            "signature=infer_signature(X, model.predict(X)) and register it again")
    frame, source = _reference_frame(runtime, info, columns, reference)
    uri = keep_reference(runtime, model_name, version, frame) if frame is not None \
        else history.PENDING_REFERENCE
    with session_scope(runtime.store_url) as session:
        lock_model(session, model_name)
        _refuse_if_watched_in(session, model_name, alias)
        return _record(session, runtime, info, actor, channel, uri, source,
                       0 if frame is None else len(frame))


def _refuse_if_watched(runtime: Runtime, model_name: str) -> None:
    with session_scope(runtime.store_url) as session:
        _refuse_if_watched_in(session, model_name, runtime.settings.champion_alias)


def _refuse_if_watched_in(session: Session, model_name: str, alias: str) -> None:
    last = history.last_alias_event(session, model_name, alias)
    if last is not None:
        raise AdoptionError(f"{model_name} is already watched by Vigil (@{alias} last recorded at "
                            f"version {last.to_version}, {last.kind} by {last.actor})")


def _reference_frame(runtime: Runtime, info: VersionInfo, columns: list[dict[str, Any]],
                     path: Path | None):
    """(frame, where it came from); (None, why it is pending) when there is none to take yet."""
    if path is not None:
        frame = read_table(path)
        return fit_signature(frame, columns, f"reference file {path}"), f"file {path}"
    if info.run_id:
        with tempfile.TemporaryDirectory() as tmp:
            logged = runtime.registry.logged_dataset(info.run_id, Path(tmp))
            if logged is not None:
                try:
                    frame = fit_signature(read_table(logged), columns, "the logged dataset")
                except ValueError as error:
                    return None, f"pending: first healthy production window ({error})"
                return frame, f"the dataset logged with run {info.run_id} ({logged.name})"
    return None, ("pending: first healthy production window (no --reference file, and the "
                  "version's run logged no dataset that can be read)")


def _record(session: Session, runtime: Runtime, info: VersionInfo, actor: str, channel: str,
            uri: str, source: str, rows: int) -> Adoption:
    name, version, alias = info.model_name, info.version, runtime.settings.champion_alias
    now = utcnow()
    metrics = {k: v for k, v in info.metrics.items() if k in REGISTRATION_METRICS}
    event = history.record_event(
        session, model_name=name, kind="adopt", actor=actor, alias=alias, from_version=None,
        to_version=version, reason="adopted: Vigil watches this model from now on",
        evidence={"reference": source}, now=now)
    history.upsert_version(session, model_name=name, version=version, registered_at=info.created_at,
                           run_id=info.run_id, eval_metrics=metrics, now=now)
    history.record_reference(session, model_name=name, version=version, uri=uri, rows=rows)
    baseline = _baseline(session, runtime, info, metrics, event)
    event.evidence = {"reference": source, "baseline": baseline}
    history.record_access(session, actor=actor, action="adopt", allowed=True, channel=channel,
                          model_name=name, detail=f"version {version}")
    outbox.enqueue(session, model_name=name, kind="adopt", severity="info",
                   title=f"{name}: adopted by Vigil, @{alias} is version {version}",
                   facts={"model": name, "version": version, "by": actor,
                          "drift reference": source, "baseline": baseline},
                   link=runtime.settings.dashboard_url, now=now,
                   event=Adopted(type="adopt", model=name, occurred_at=now, actor=actor,
                                 reason=event.reason, alias=alias, version=version,
                                 reference=source).document())
    return Adoption(name, version, source, rows, baseline)


def _baseline(session: Session, runtime: Runtime, info: VersionInfo, metrics: dict[str, float],
              event) -> str:
    if "accuracy" in metrics:
        return f"registration accuracy {metrics['accuracy']:.4f} (logged with its run)"
    health = {row.version: row for row in history.versions_health(session, info.model_name)}
    record = production_record(session, info.model_name, info.version, event, health,
                               model_policy.effective(session, runtime.settings.watchdog, info.model_name))
    if record is not None:
        return f"accuracy {record['accuracy']:.4f} on {record['labels']} labels ({record['source']})"
    return f"its first {OWN_START_LABELS} labelled predictions, once they arrive"
