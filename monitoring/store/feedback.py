"""True outcomes for served predictions: normalised labels, upserted into the ``feedback`` table.

A label may be sent again (a correction); the latest one wins. Labels are stored as text in the
spelling of ``monitoring.labels.label_text``, the one the prediction log uses for predictions
(``1``, not ``1.0`` or ``True``), so they compare equal.
"""

from __future__ import annotations

from typing import Any

from monitoring.labels import label_text
from monitoring.store.dialect import upsert
from monitoring.store.engine import get_engine, utcnow
from monitoring.store.tables import Feedback


def record_feedback(url: str, labels: dict[str, Any], model_name: str | None) -> int:
    """Upsert ``prediction_id -> label`` in one transaction; returns how many rows were written.

    A missing label (``None``, NaN) is refused with a ``ValueError`` and nothing is written.
    """
    if not labels:
        return 0
    texts = {pid: label_text(label) for pid, label in labels.items()}
    missing = [pid for pid, text in texts.items() if text is None]
    if missing:
        raise ValueError(f"no label for prediction ids {missing[:5]}: send the true outcome")
    now = utcnow()
    rows = [{"prediction_id": pid, "label": text, "model_name": model_name, "received_at": now}
            for pid, text in texts.items()]
    with get_engine(url).begin() as connection:
        upsert(connection, Feedback, rows, key=["prediction_id"],
               set_columns=("label", "received_at", "model_name"))
    return len(rows)
