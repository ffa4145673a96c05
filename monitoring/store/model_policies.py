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


def overrides(session: Session, model_name: str) -> dict[str, Any]:
    """The fields ``model_name`` overrides (empty: it follows the defaults)."""
    row = session.get(ModelPolicy, model_name)
    return dict(row.overrides) if row is not None else {}


def rows(session: Session) -> dict[str, ModelPolicy]:
    """Every model's row, by model name."""
    return {row.model_name: row for row in session.scalars(select(ModelPolicy))}


def save(session: Session, model_name: str, values: dict[str, Any], *, actor: str, now: datetime) -> None:
    """Replace the model's overrides with ``values`` (an empty dict keeps the row: who reset it)."""
    row = session.get(ModelPolicy, model_name)
    if row is None:
        session.add(ModelPolicy(model_name=model_name, overrides=values, updated_at=now, updated_by=actor))
    else:
        row.overrides, row.updated_at, row.updated_by = values, now, actor
    session.flush()
