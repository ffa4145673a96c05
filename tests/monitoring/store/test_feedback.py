"""Feedback labels: one spelling for labels and predictions, upserted on the prediction id."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitoring.store.engine import session_scope
from monitoring.store.feedback import label_text, record_feedback
from monitoring.store.tables import Feedback


@pytest.mark.parametrize(("value", "text"), [
    (1, "1"), (1.0, "1"), (0.0, "0"), (2.5, "2.5"), ("yes", "yes"), (True, "1"), (False, "0"), (-3, "-3"),
])
def test_labels_and_predictions_share_one_spelling(value, text):
    assert label_text(value) == text


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
