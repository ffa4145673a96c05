"""The ``model_policies`` rows: each model's overrides of the watchdog's policy, by field name.

Plain reads and one write; merging over the defaults, validation and the audit trail are
``monitoring.watchdog.model_policy``'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from monitoring.store.engine import Session
from monitoring.store.tables import ModelPolicy


def row(session: Session, model_name: str) -> ModelPolicy | None:
    """The model's row (None: it never had an override)."""
    return session.get(ModelPolicy, model_name)


def overrides(session: Session, model_name: str) -> dict[str, Any]:
    """The fields ``model_name`` overrides (empty: it follows the defaults)."""
    found = row(session, model_name)
    return dict(found.overrides) if found is not None else {}


def rows(session: Session) -> dict[str, ModelPolicy]:
    """Every model's row, by model name."""
    return {found.model_name: found for found in session.scalars(select(ModelPolicy))}


def save(session: Session, model_name: str, values: dict[str, Any], *, actor: str, now: datetime) -> None:
    """Replace the model's overrides with ``values`` (an empty dict keeps the row: who reset it)."""
    found = row(session, model_name)
    if found is None:
        session.add(ModelPolicy(model_name=model_name, overrides=values, updated_at=now, updated_by=actor))
    else:
        found.overrides, found.updated_at, found.updated_by = values, now, actor
    session.flush()
