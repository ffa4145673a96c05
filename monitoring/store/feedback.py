"""True outcomes for served predictions, in the ``feedback`` table.

Two writers:

- the API's (``find_predictions``, then ``write_labels``): a label only for a prediction that
  exists, with the client that sent it and whether its key is trusted for decisions; the first
  label stands (a second one is a conflict), a correction replaces it and is written to the
  access log with the old and the new value, who and why, in the same transaction;
- ``record_feedback``, for Vigil's own writers (the demo's seed, tests): upserts trusted labels.

Labels are stored as text in the spelling of ``monitoring.labels.label_text``, the one the
prediction log uses for predictions (``1``, not ``1.0`` or ``True``), so they compare equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from monitoring.labels import label_text
from monitoring.store.dialect import insert_ignore, upsert
from monitoring.store.engine import get_engine, session_scope, utcnow
from monitoring.store.history import record_access
from monitoring.store.tables import Feedback, Prediction

LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class Made:
    """A stored prediction as a label is judged against it, with its label if it has one."""

    model_name: str
    model_version: int
    client: str | None
    label: str | None


@dataclass(frozen=True)
class NewLabel:
    prediction_id: str
    model_name: str
    label: str


@dataclass(frozen=True)
class Correction:
    prediction_id: str
    model_name: str
    old: str
    new: str
    reason: str


def find_predictions(url: str, ids: Sequence[str]) -> dict[str, Made]:
    """The stored predictions among ``ids``, each with its current label (None: not labelled)."""
    found: dict[str, Made] = {}
    with session_scope(url) as session:
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = list(ids[start:start + LOOKUP_CHUNK])
            rows = session.execute(
                select(Prediction.id, Prediction.model_name, Prediction.model_version, Prediction.client,
                       Feedback.label)
                .outerjoin(Feedback, Feedback.prediction_id == Prediction.id)
                .where(Prediction.id.in_(chunk)))
            for pid, model, version, client, label in rows:
                found[pid] = Made(model, version, client, label)
    return found


def write_labels(url: str, new: Sequence[NewLabel], corrections: Sequence[Correction], *,
                 client: str | None, key_id: int | None, trusted: bool, actor: str) -> set[str]:
    """Insert the new labels and apply the corrections in one transaction.

    Returns the ids of new labels NOT stored because a label arrived for them meanwhile (the
    first label stands: the caller answers 409 for those). A correction whose stored label is no
    longer ``old`` is not applied either and its id is returned too.
    """
    now = utcnow()
    rows = [{"prediction_id": item.prediction_id, "model_name": item.model_name, "label": item.label,
             "received_at": now, "client": client, "key_id": key_id, "trusted": trusted} for item in new]
    with session_scope(url) as session:
        inserted = set(insert_ignore(session, Feedback, rows, key=["prediction_id"],
                                     returning=Feedback.prediction_id)) if rows else set()
        lost = {item.prediction_id for item in new} - inserted
        for item in corrections:
            changed = session.execute(
                update(Feedback).where(Feedback.prediction_id == item.prediction_id, Feedback.label == item.old)
                .values(label=item.new, corrected_at=now, client=client, key_id=key_id, trusted=trusted))
            if changed.rowcount != 1:
                lost.add(item.prediction_id)
                continue
            record_access(session, actor=actor, action="label_correction", allowed=True, channel="api",
                          model_name=item.model_name,
                          detail=f"prediction {item.prediction_id}: label {item.old!r} -> {item.new!r}; "
                                 f"reason: {item.reason}")
    return lost


def record_feedback(url: str, labels: dict[str, Any], model_name: str | None, *, trusted: bool = True) -> int:
    """Upsert ``prediction_id -> label`` in one transaction; returns how many rows were written.

    For Vigil's own writers (no client, no checks against the prediction log). A missing label
    (``None``, NaN) is refused with a ``ValueError`` and nothing is written.
    """
    if not labels:
        return 0
    texts = {pid: label_text(label) for pid, label in labels.items()}
    missing = [pid for pid, text in texts.items() if text is None]
    if missing:
        raise ValueError(f"no label for prediction ids {missing[:5]}: send the true outcome")
    now = utcnow()
    rows = [{"prediction_id": pid, "label": text, "model_name": model_name, "received_at": now,
             "trusted": trusted} for pid, text in texts.items()]
    with get_engine(url).begin() as connection:
        upsert(connection, Feedback, rows, key=["prediction_id"],
               set_columns=("label", "received_at", "model_name", "trusted"))
    return len(rows)
