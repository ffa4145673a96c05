"""Evaluations skipped because MLflow did not answer: recorded, alerted after a grace period.

When the champion alias cannot be read (``RegistryUnavailable``), the model is not judged: the
skip is written on its control row (since when, the last one, why) in a short transaction of its
own, never one held across the remote call. Once the skips have lasted the grace period
(``VIGIL_MLFLOW_UNREACHABLE_GRACE_SECONDS``), the ``mlflow_unreachable`` alert fires; the first
evaluation that reads the alias again clears the skips and resolves the alert.
"""

from __future__ import annotations

from datetime import datetime

from monitoring.store import alerts
from monitoring.store.engine import Session, lock_model, session_scope
from monitoring.store.tables import ModelControl

KIND = "mlflow_unreachable"


def alert_key(name: str) -> str:
    return f"watchdog:{name}:{KIND}"


def alert_due(skipped_since: datetime, now: datetime, grace_seconds: float) -> bool:
    """Whether skips that began at ``skipped_since`` have lasted the grace period."""
    return (now - skipped_since).total_seconds() >= grace_seconds


def record_skip(url: str, name: str, reason: str, now: datetime, grace_seconds: float) -> list[str]:
    """Record one skipped evaluation; raise the alert once due. Returns what changed, to say."""
    with session_scope(url) as session:
        control = lock_model(session, name)
        notes = []
        if control.skipped_since is None:
            control.skipped_since = now
            notes.append(f"evaluation skipped: {reason}")
        control.last_skipped_at, control.skip_reason = now, reason
        if alert_due(control.skipped_since, now, grace_seconds):
            alert = alerts.raise_alert(
                session, key=alert_key(name), model_name=name, kind=KIND, severity="critical",
                title=f"{name}: MLflow unreachable, the watchdog cannot evaluate the champion",
                facts=_facts(control, now), now=now,
                text="No automatic rollback can happen until MLflow answers. The API keeps "
                     "serving the version it has loaded. Check the MLflow server.")
            if alert.opened_at == now:
                notes.append(f"{KIND} alert raised after {_seconds(control, now):.0f} s of skips")
        return notes


def clear_skips(session: Session, control: ModelControl, name: str, now: datetime) -> list[str]:
    """The alias was read again: end the run of skips and resolve its alert (in the caller's
    transaction, which holds the model's lock)."""
    if control.skipped_since is None:
        return []
    facts = _facts(control, now)
    seconds = _seconds(control, now)
    control.skipped_since = control.last_skipped_at = control.skip_reason = None
    resolved = alerts.resolve_alert(session, key=alert_key(name), facts=facts, now=now,
                                    text=f"MLflow answers again; the watchdog evaluates {name}.")
    return [f"MLflow answers again after {seconds:.0f} s of skipped evaluations"
            + (f"; {KIND} alert resolved" if resolved else "")]


def _seconds(control: ModelControl, now: datetime) -> float:
    return (now - control.skipped_since).total_seconds()


def _facts(control: ModelControl, now: datetime) -> dict[str, object]:
    return {"skipping since": f"{control.skipped_since:%Y-%m-%d %H:%M:%S} UTC",
            "seconds skipped": round(_seconds(control, now), 1), "last error": control.skip_reason}
