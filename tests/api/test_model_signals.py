"""/metrics carries the store's model signals: parsed with prometheus_client, checked against it."""

from __future__ import annotations

import math
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from monitoring.store import alerts
from monitoring.store.engine import lock_model, session_scope, utcnow
from monitoring.store.metric_windows import metric_row, upsert_metrics
from monitoring.store.model_signals import read_signals


def _families(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_show_the_newest_window_per_metric_and_open_alerts(shared_client, shared_settings):
    model, url = shared_settings.model_name, shared_settings.database_url
    end = utcnow().replace(microsecond=0)
    rows = []
    for age, f1, labelled, p95, drift in ((1, 0.71, 140, 42.0, 0.25), (0, 0.64, 180, 55.0, 0.5)):
        start, stop = end - timedelta(hours=age + 1), end - timedelta(hours=age)
        for metric, value, count in (("f1", f1, labelled), ("latency_p95_ms", p95, 900),
                                     ("drift_share", drift, 8), ("roc_auc", None, 3)):
            rows.append(metric_row(model_name=model, version=1, window_start=start, window_end=stop,
                                   metric=metric, value=value, sample_count=count, computed_at=end))
    with session_scope(url) as session:
        upsert_metrics(session, rows)
        control = lock_model(session, model)
        control.detector_state = {"quality": {"llr": 1.5, "labels": 33, "breaching": True}}
        control.last_evaluated_at = utcnow() - timedelta(seconds=30)
        alerts.raise_alert(session, key=f"{model}:drift", model_name=model, kind="drift",
                           severity="warning", title="drift", facts={})
    shared_client.app.state.service.signals.refresh()
    found = _families(shared_client.get("/metrics").text)

    def value(name, metric=None):
        labels = {"model_name": model, **({"model_version": "1", "metric": metric} if metric else {})}
        return found[(name, tuple(sorted(labels.items())))]

    assert value("vigil_model_metric", "f1") == 0.64  # the newest window, not the older one
    assert value("vigil_model_metric_samples", "f1") == 180  # its labelled count
    assert value("vigil_model_metric", "latency_p95_ms") == 55.0
    assert value("vigil_model_metric", "drift_share") == 0.5
    assert math.isnan(value("vigil_model_metric", "roc_auc"))
    assert value("vigil_model_metric_window_end_seconds", "f1") == end.timestamp()
    assert value("vigil_model_open_alerts") == 1
    assert value("vigil_model_quality_test_breaching") == 1
    assert value("vigil_model_quality_test_llr") == 1.5
    assert value("vigil_model_quality_test_labels") == 33
    assert 30 <= value("vigil_model_seconds_since_last_evaluation") < 90
    stored = {(s.metric, s.value, s.sample_count) for s in read_signals(url, now=utcnow()).latest
              if s.model_name == model}
    shown = {(m, found[("vigil_model_metric", (("metric", m), ("model_name", model),
                                               ("model_version", "1")))]) for m, _, _ in stored}
    assert {(m, v) for m, v, _ in stored if v is not None} <= shown


def test_signals_are_read_on_both_backends(store_url):
    now = utcnow()
    with session_scope(store_url) as session:
        upsert_metrics(session, [metric_row(
            model_name="m", version=2, window_start=now - timedelta(hours=2 - i),
            window_end=now - timedelta(hours=1 - i), metric="accuracy", value=0.8 + i / 10,
            sample_count=10 + i, computed_at=now) for i in range(2)])
        alerts.raise_alert(session, key="m:x", model_name="m", kind="drift", severity="info",
                           title="t", facts={})
    signals = read_signals(store_url, now=now + timedelta(hours=1))
    (latest,) = signals.latest
    assert (latest.model_version, latest.value, latest.sample_count) == (2, 0.9, 11)
    assert signals.open_alerts == {"m": 1}
