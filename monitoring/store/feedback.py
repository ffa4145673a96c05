"""True outcomes for served predictions: normalised labels, upserted into the ``feedback`` table.

A label may be sent again (a correction); the latest one wins. Labels are stored as text in the
same spelling the prediction log uses for predictions (``1``, not ``1.0``), so they compare equal.
"""

from __future__ import annotations

from typing import Any

from monitoring.store.engine import get_engine, utcnow
from monitoring.store.tables import Feedback


def label_text(value: Any) -> str:
    """The stored spelling of a label or a prediction: integral numbers without a decimal point.

    Booleans are the numbers 1 and 0 (as in Python and scikit-learn, where ``True == 1``), so a
    label sent as JSON ``true`` matches a 0/1 classifier's prediction ``1``.
    """
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def record_feedback(url: str, labels: dict[str, Any], model_name: str | None) -> int:
    """Upsert ``prediction_id -> label`` in one transaction; returns how many rows were written."""
    if not labels:
        return 0
    engine = get_engine(url)
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    now = utcnow()
    rows = [{"prediction_id": pid, "label": label_text(label), "model_name": model_name, "received_at": now}
            for pid, label in labels.items()]
    statement = insert(Feedback.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=["prediction_id"],
        set_={"label": statement.excluded.label, "received_at": statement.excluded.received_at,
              "model_name": statement.excluded.model_name},
    )
    with engine.begin() as connection:
        connection.execute(statement, rows)
    return len(rows)
