"""Feedback labels: stored in the one spelling of ``monitoring.labels``, upserted on the prediction id."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitoring.store.engine import session_scope
from monitoring.store.feedback import record_feedback
from monitoring.store.tables import Feedback


def test_upsert_keeps_the_latest_label(store_url):
    assert record_feedback(store_url, {}, "m") == 0
    assert record_feedback(store_url, {"a": 1, "b": "no"}, "m") == 2
    with session_scope(store_url) as session:
        first_time = session.get(Feedback, "a").received_at
    assert record_feedback(store_url, {"a": 0.0}, "m2") == 1
    with session_scope(store_url) as session:
        rows = {f.prediction_id: (f.label, f.model_name) for f in session.scalars(select(Feedback))}
        assert session.get(Feedback, "a").received_at >= first_time
    assert rows == {"a": ("0", "m2"), "b": ("no", "m")}


def test_labels_are_stored_in_the_one_spelling(store_url):
    assert record_feedback(store_url, {"t": True, "s": "true", "f": 1.0, "y": " yes"}, "m") == 4
    with session_scope(store_url) as session:
        rows = {f.prediction_id: f.label for f in session.scalars(select(Feedback))}
    assert rows == {"t": "1", "s": "1", "f": "1", "y": "yes"}


def test_a_missing_label_is_refused_and_nothing_is_written(store_url):
    with pytest.raises(ValueError, match="no label for prediction ids \\['b'\\]"):
        record_feedback(store_url, {"a": 1, "b": None}, "m")
    with session_scope(store_url) as session:
        assert session.scalars(select(Feedback)).all() == []
