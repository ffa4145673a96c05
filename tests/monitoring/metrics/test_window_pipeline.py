"""The monitoring run against a real store: quality equals scikit-learn's, latency percentiles equal
numpy's, late feedback lands in its prediction's window, and re-runs change nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm
from sqlalchemy import select

from monitoring import metric_names
from monitoring.metrics import prediction_drift
from monitoring.metrics.window_pipeline import compute_windows
from monitoring.settings import Settings
from monitoring.store import history
from monitoring.store.engine import session_scope
from monitoring.store.tables import DriftResult, Feedback, MetricWindow, Prediction
from tests.runtimes import runtime_for

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # a window boundary (5-minute windows)
MODEL = "loan-default-test"


def _settings(tmp_path, **overrides) -> Settings:
    return Settings(**{"var_dir": tmp_path / "var", "api_url": "http://127.0.0.1:9", **overrides})


def _log(url, rows, version=1, model=MODEL, task="classification"):
    """Predictions (and their feedback, where a row has a label) written straight to the store."""
    with session_scope(url) as session:
        history.upsert_version(session, model_name=model, version=version,
                                  eval_metrics={"accuracy": 0.8} if task == "classification" else {"rmse": 1.0})
        for row in rows:
            session.add(Prediction(
                id=row["id"], model_name=model, model_version=version, created_at=row["at"],
                features={"age": 40}, prediction=row.get("prediction"), score=row.get("score"),
                latency_ms=row.get("latency", 10.0), status=row.get("status", "ok"),
                source=row.get("source", "api")))
            if row.get("label") is not None:
                session.add(Feedback(prediction_id=row["id"], model_name=model, label=row["label"],
                                     received_at=row.get("label_at", row["at"] + timedelta(seconds=1))))


def _classification_rows(n, start, seed, labelled_share=1.0, prefix="p"):
    rng = np.random.default_rng(seed)
    score = rng.random(n)
    truth = (rng.random(n) < score).astype(int)
    rows = []
    for i in range(n):
        rows.append({"id": f"{prefix}{seed}-{i}", "at": start + timedelta(seconds=float(rng.uniform(0, 299))),
                     "prediction": str(int(score[i] > 0.5)), "score": float(score[i]),
                     "label": str(truth[i]) if i < labelled_share * n else None,
                     "latency": float(rng.lognormal(3, 0.5))})
    return rows


def _metrics(url, model=MODEL):
    with session_scope(url) as session:
        return {(r.model_version, r.window_start, r.metric): (r.value, r.sample_count)
                for r in session.scalars(select(MetricWindow).where(MetricWindow.model_name == model))}


def _dump(url):
    with session_scope(url) as session:
        metrics = sorted((r.model_name, r.model_version, r.window_start, r.metric, r.value,
                          r.sample_count, r.computed_at) for r in session.scalars(select(MetricWindow)))
        drift = sorted((r.model_name, r.model_version, r.window_start, r.feature, r.score, r.drifted,
                        r.computed_at) for r in session.scalars(select(DriftResult)))
    return metrics, drift


def test_quality_metrics_equal_scikit_learns(sqlite_url, tmp_path):
    rows = _classification_rows(300, T0, seed=1, labelled_share=0.7)
    _log(sqlite_url, rows)

    summary = compute_windows(runtime_for(sqlite_url, None, _settings(tmp_path)), model_name=MODEL,
                              start=T0, end=T0 + timedelta(minutes=5), reports=False)

    labelled = [r for r in rows if r["label"] is not None]
    truth = [r["label"] for r in labelled]
    predicted = [r["prediction"] for r in labelled]
    expected = {
        metric_names.ACCURACY: skm.accuracy_score(truth, predicted),
        metric_names.PRECISION: skm.precision_score(truth, predicted, pos_label="1"),
        metric_names.RECALL: skm.recall_score(truth, predicted, pos_label="1"),
        metric_names.F1: skm.f1_score(truth, predicted, pos_label="1"),
        metric_names.ROC_AUC: skm.roc_auc_score([int(t) for t in truth], [r["score"] for r in labelled]),
    }
    stored = _metrics(sqlite_url)
    assert summary.windows[0].start == T0 and summary.served == [(MODEL, 1, summary.windows[0])]
    for name, value in expected.items():
        assert stored[(1, T0, name)] == (pytest.approx(value, abs=1e-12), 210)
    assert stored[(1, T0, metric_names.REQUESTS)] == (300.0, 300)
    assert stored[(1, T0, metric_names.THROUGHPUT)][0] == pytest.approx(1.0)


def test_regression_quality_is_mae_and_rmse(sqlite_url, tmp_path):
    rng = np.random.default_rng(3)
    truth, predicted = rng.normal(100, 10, 50), rng.normal(100, 10, 50)
    rows = [{"id": f"r{i}", "at": T0 + timedelta(seconds=i), "prediction": str(predicted[i]),
             "score": float(predicted[i]), "label": str(truth[i])} for i in range(50)]
    _log(sqlite_url, rows, task="regression")

    compute_windows(runtime_for(sqlite_url, None, _settings(tmp_path)), model_name=MODEL, start=T0,
                    end=T0 + timedelta(minutes=5), reports=False)

    stored = _metrics(sqlite_url)
    assert stored[(1, T0, metric_names.MAE)] == (pytest.approx(skm.mean_absolute_error(truth, predicted)), 50)
    assert stored[(1, T0, metric_names.RMSE)][0] == pytest.approx(np.sqrt(skm.mean_squared_error(truth, predicted)))
    assert (1, T0, metric_names.ACCURACY) not in stored


def test_few_labels_carry_their_sample_count_and_unlabelled_windows_have_no_quality(sqlite_url, tmp_path):
    _log(sqlite_url, _classification_rows(40, T0, seed=2, labelled_share=0.1))
    _log(sqlite_url, _classification_rows(20, T0 + timedelta(minutes=5), seed=3, labelled_share=0.0))

    compute_windows(runtime_for(sqlite_url, None, _settings(tmp_path)), model_name=MODEL, start=T0,
                    end=T0 + timedelta(minutes=10), reports=False)

    stored = _metrics(sqlite_url)
    assert stored[(1, T0, metric_names.ACCURACY)][1] == 4
    assert stored[(1, T0, metric_names.REQUESTS)] == (40.0, 40)
    second = T0 + timedelta(minutes=5)
    assert stored[(1, second, metric_names.REQUESTS)] == (20.0, 20)
    assert (1, second, metric_names.ACCURACY) not in stored


def test_latency_percentiles_equal_numpys_and_ignore_batch_rows(store_url, tmp_path):
    rows = _classification_rows(101, T0, seed=4, labelled_share=0.0)
    rows[0]["status"] = "error"
    batch = [{"id": f"b{i}", "at": T0 + timedelta(seconds=i / 2), "prediction": "0", "score": 0.1,
              "latency": 0.001, "source": "batch"} for i in range(500)]
    _log(store_url, rows + batch)

    compute_windows(runtime_for(store_url, None, _settings(tmp_path)), model_name=MODEL, start=T0,
                    end=T0 + timedelta(minutes=5), reports=False)

    stored = _metrics(store_url)
    latencies = [r["latency"] for r in rows]
    for name, q in ((metric_names.LATENCY_P50, 50), (metric_names.LATENCY_P95, 95), (metric_names.LATENCY_P99, 99)):
        assert stored[(1, T0, name)] == (pytest.approx(np.percentile(latencies, q), rel=1e-9), 101)
    assert stored[(1, T0, metric_names.REQUESTS)] == (601.0, 601)
    assert stored[(1, T0, metric_names.ERROR_RATE)][0] == pytest.approx(1 / 601)


def test_a_longer_range_merges_its_windows_latency_histograms(store_url, tmp_path):
    from monitoring.metrics.latency_sketch import RELATIVE_ERROR
    from monitoring.store import dashboard_queries
    from monitoring.store.tables import LatencyHistogram

    rng = np.random.default_rng(8)
    busy = [{"id": f"busy-{i}", "at": T0 + timedelta(seconds=i * 0.5), "prediction": "1", "score": 0.9,
             "latency": float(rng.lognormal(1.0, 0.2))} for i in range(400)]
    slow = [{"id": f"slow-{i}", "at": T0 + timedelta(minutes=5, seconds=i * 5), "prediction": "1", "score": 0.9,
             "latency": float(rng.lognormal(4.0, 0.2))} for i in range(30)]
    _log(store_url, busy + slow)
    settings, end = _settings(tmp_path), T0 + timedelta(minutes=10)
    compute_windows(runtime_for(store_url, None, settings), model_name=MODEL, start=T0, end=end, reports=False,
                    now=end + timedelta(minutes=1))
    with session_scope(store_url) as session:
        stored = {(r.window_start, r.samples, r.computed_at) for r in session.scalars(select(LatencyHistogram))}
    assert {(start, samples) for start, samples, _ in stored} == {(T0, 400), (T0 + timedelta(minutes=5), 30)}

    union = np.sort([r["latency"] for r in busy + slow])
    p99 = union[int(np.ceil(0.99 * len(union))) - 1]
    ten_minutes = dashboard_queries.series(store_url, MODEL, (metric_names.LATENCY_P99,), T0, end, bucket=600)
    assert ten_minutes["weighted"].tolist() == [pytest.approx(p99, rel=RELATIVE_ERROR)]
    windows = _metrics(store_url)
    mean_of_windows = np.mean([windows[(1, T0 + timedelta(minutes=m), metric_names.LATENCY_P99)][0] for m in (0, 5)])
    assert abs(mean_of_windows - p99) / p99 > 0.2  # what the range showed before histograms
    recent = dashboard_queries.recent_summary(store_url, MODEL, (metric_names.LATENCY_P99,), end, minutes=10)
    assert recent.at[metric_names.LATENCY_P99, "mean"] == pytest.approx(p99, rel=RELATIVE_ERROR)

    compute_windows(runtime_for(store_url, None, settings), model_name=MODEL, start=T0, end=end, reports=False,
                    now=end + timedelta(minutes=4))
    with session_scope(store_url) as session:
        assert {(r.window_start, r.samples, r.computed_at) for r in session.scalars(select(LatencyHistogram))} == stored


def test_late_feedback_updates_the_window_of_its_prediction(sqlite_url, tmp_path):
    settings = _settings(tmp_path)
    rows = _classification_rows(100, T0, seed=5, labelled_share=0.0)
    _log(sqlite_url, rows)
    compute_windows(runtime_for(sqlite_url, None, settings), model_name=MODEL, start=T0, end=T0 + timedelta(minutes=5),
                    reports=False)
    assert (1, T0, metric_names.ACCURACY) not in _metrics(sqlite_url)

    arrival = T0 + timedelta(minutes=21)  # feedback arrives four windows later
    with session_scope(sqlite_url) as session:
        for row in rows[:60]:
            session.add(Feedback(prediction_id=row["id"], model_name=MODEL, label=row["prediction"],
                                 received_at=arrival))
    summary = compute_windows(runtime_for(sqlite_url, None, settings), model_name=MODEL, start=T0 + timedelta(minutes=20),
                              end=T0 + timedelta(minutes=25), reports=False)

    assert [(name, w.start) for name, w in summary.refreshed] == [(MODEL, T0)]
    stored = _metrics(sqlite_url)
    assert stored[(1, T0, metric_names.ACCURACY)] == (1.0, 60)
    assert not [key for key in stored if key[1] != T0]


def test_rerunning_a_window_changes_nothing(store_url, tmp_path):
    _log(store_url, _classification_rows(120, T0, seed=6, labelled_share=0.5))
    _log(store_url, _classification_rows(30, T0, seed=7, labelled_share=0.5, prefix="v2-"), version=2)
    settings = _settings(tmp_path)

    compute_windows(runtime_for(store_url, None, settings), model_name=MODEL, start=T0, end=T0 + timedelta(minutes=5),
                    reports=False, now=T0 + timedelta(minutes=6))
    first = _dump(store_url)
    compute_windows(runtime_for(store_url, None, settings), model_name=MODEL, start=T0, end=T0 + timedelta(minutes=5),
                    reports=False, now=T0 + timedelta(minutes=9))

    assert _dump(store_url) == first
    assert {key[0] for key in _metrics(store_url)} == {1, 2}


class _MetricsHandler(BaseHTTPRequestHandler):
    body = (b"# TYPE vigil_process_cpu_percent gauge\nvigil_process_cpu_percent{pid=\"1\"} 12.5\n"
            b"vigil_process_cpu_percent{pid=\"2\"} 7.5\n"
            b"# TYPE vigil_process_memory_mb gauge\nvigil_process_memory_mb{pid=\"1\"} 256.0\n")

    def do_GET(self):
        self.send_response(200 if self.path == "/metrics" else 404)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_process_metrics_come_from_the_api_for_the_latest_window_only(sqlite_url, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MetricsHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = _settings(tmp_path, api_url=f"http://127.0.0.1:{server.server_port}")
        _log(sqlite_url, _classification_rows(10, T0, seed=8, labelled_share=0.0))
        _log(sqlite_url, _classification_rows(10, T0 + timedelta(minutes=5), seed=9, labelled_share=0.0))
        compute_windows(runtime_for(sqlite_url, None, settings), model_name=MODEL, start=T0 - timedelta(minutes=5),
                        end=T0 + timedelta(minutes=10), reports=False, now=T0 + timedelta(minutes=11))
    finally:
        server.shutdown()
        server.server_close()
    stored = _metrics(sqlite_url)
    latest = T0 + timedelta(minutes=5)
    assert stored[(1, latest, metric_names.CPU_PERCENT)] == (20.0, 1)
    assert stored[(1, latest, metric_names.MEMORY_MB)] == (256.0, 1)
    assert (1, T0, metric_names.CPU_PERCENT) not in stored


def test_unreachable_api_skips_process_metrics(sqlite_url, tmp_path):
    _log(sqlite_url, _classification_rows(10, T0, seed=10, labelled_share=0.0))
    compute_windows(runtime_for(sqlite_url, None, _settings(tmp_path)), model_name=MODEL, start=T0,
                    end=T0 + timedelta(minutes=5), reports=False, now=T0 + timedelta(minutes=6))
    stored = _metrics(sqlite_url)
    assert (1, T0, metric_names.REQUESTS) in stored and (1, T0, metric_names.CPU_PERCENT) not in stored


@pytest.mark.slow
def test_drift_against_the_versions_reference_with_an_evidently_report(settings, model_name):
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    registry = Registry(settings)
    url = settings.database_url
    result = train(datasets.generate(2000, 0), registry=registry, store_url=url, model_name=model_name,
                   actor="test")
    drifted = datasets.generate_features(400, 1, "covariate_drift")
    with session_scope(url) as session:
        for i, features in enumerate(drifted.to_dict("records")):
            session.add(Prediction(id=f"d{i}", model_name=model_name, model_version=result.version,
                                   created_at=T0 + timedelta(seconds=i / 2), features=features,
                                   prediction="0", score=0.2, latency_ms=5.0, status="ok", source="api"))

    summary = compute_windows(runtime_for(url, registry, settings), model_name=model_name, start=T0,
                              end=T0 + timedelta(minutes=5))

    with session_scope(url) as session:
        drift = {r.feature: r for r in session.scalars(select(DriftResult))}
        outputs = {name: drift.pop(name) for name in prediction_drift.OUTPUT_COLUMNS}
    assert set(drift) == set(datasets.NUMERIC + datasets.CATEGORICAL)
    assert drift["credit_score"].drifted and drift["age"].drifted
    assert not drift["region"].drifted
    assert drift["age"].reference_size == 1500 and drift["age"].current_size == 400
    share = _metrics(url, model_name)[(result.version, T0, metric_names.DRIFT_SHARE)]
    assert share == (pytest.approx(sum(r.drifted for r in drift.values()) / len(drift)), 400)  # inputs only
    # every logged answer was class 0 at 0.2: nothing like what the version answers on its reference
    assert all(row.drifted and row.current_size == 400 for row in outputs.values())
    assert outputs[prediction_drift.CLASS].reference_size == 1500
    report = drift["age"].report_path
    assert summary.reports == [report]
    assert "<html" in Path(report).read_text()[:2000].lower()


def test_a_report_for_every_drifted_window_and_for_one_healthy_window_each_period(settings, model_name):
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    registry = Registry(settings)
    url = settings.database_url
    result = train(datasets.generate(2000, 0), registry=registry, store_url=url, model_name=model_name,
                   actor="test")
    scenarios = {0: "healthy", 5: "healthy", 10: "covariate_drift"}  # T0 is on the hour
    with session_scope(url) as session:
        for minute, scenario in scenarios.items():
            for i, features in enumerate(datasets.generate_features(400, 11 + minute, scenario).to_dict("records")):
                session.add(Prediction(id=f"{minute}-{i}", model_name=model_name, model_version=result.version,
                                       created_at=T0 + timedelta(minutes=minute, seconds=i / 2), features=features,
                                       prediction="0", score=0.2, latency_ms=5.0, status="ok", source="api"))

    summary = compute_windows(runtime_for(url, registry, settings), model_name=model_name, start=T0,
                              end=T0 + timedelta(minutes=15))

    with session_scope(url) as session:
        reported = {(r.window_start, r.report_path is not None) for r in session.scalars(select(DriftResult))}
    assert reported == {(T0, True), (T0 + timedelta(minutes=5), False), (T0 + timedelta(minutes=10), True)}
    assert len(summary.reports) == 2


def test_data_quality_per_feature_is_stored_beside_drift_and_a_rerun_changes_nothing(settings, model_name):
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.store.tables import DataQualityCheck
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    registry = Registry(settings)
    url = settings.database_url
    result = train(datasets.generate(2000, 0), registry=registry, store_url=url, model_name=model_name,
                   actor="test")
    window = datasets.generate_features(400, 1).to_dict("records")
    for i, features in enumerate(window):
        if i < 60:
            features["income"] = None  # 15 % missing: the reference has none
        elif i < 100:
            features["region"] = "atlantis"  # 10 % of the regions never seen in training
        elif i < 120:
            features["age"] = 250.0  # 5 % far outside the reference's range
    with session_scope(url) as session:
        for i, features in enumerate(window):
            session.add(Prediction(id=f"q{i}", model_name=model_name, model_version=result.version,
                                   created_at=T0 + timedelta(seconds=i / 2), features=features,
                                   prediction="0", score=0.2, latency_ms=5.0, status="ok", source="api"))
    runtime = runtime_for(url, registry, settings)

    summary = compute_windows(runtime, model_name=model_name, start=T0, end=T0 + timedelta(minutes=5),
                              reports=False)

    def checks():
        with session_scope(url) as session:
            return {(r.feature, r.kind): (r.rate, r.threshold, r.failed, r.rows, r.computed_at)
                    for r in session.scalars(select(DataQualityCheck).where(
                        DataQualityCheck.model_name == model_name, DataQualityCheck.window_start == T0))}

    stored = checks()
    assert summary.quality_check_rows == len(stored) > 0
    failed = {key for key, (_, _, is_failed, _, _) in stored.items() if is_failed}
    assert failed == {("income", "missing"), ("region", "unseen_category"), ("age", "out_of_range")}
    assert stored["income", "missing"][0] == pytest.approx(60 / 400)
    assert stored["region", "unseen_category"][0] == pytest.approx(40 / 400)
    assert stored["age", "out_of_range"][0] >= 20 / 400
    compute_windows(runtime, model_name=model_name, start=T0, end=T0 + timedelta(minutes=5), reports=False)
    assert checks() == stored


def test_the_versions_own_answers_on_healthy_traffic_show_no_prediction_drift(settings, model_name):
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.serving.servable import load_servable
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    registry = Registry(settings)
    url = settings.database_url
    result = train(datasets.generate(2000, 0), registry=registry, store_url=url, model_name=model_name,
                   actor="test")
    healthy = datasets.generate_features(600, 1)
    scored = load_servable(registry, model_name, result.version).score_frame(healthy)
    with session_scope(url) as session:
        for i, features in enumerate(healthy.to_dict("records")):
            session.add(Prediction(id=f"h{i}", model_name=model_name, model_version=result.version,
                                   created_at=T0 + timedelta(seconds=i / 3), features=features,
                                   prediction=str(scored.labels[i]), score=scored.scores[i], latency_ms=5.0,
                                   status="ok", source="api"))

    compute_windows(runtime_for(url, registry, settings), model_name=model_name, start=T0,
                    end=T0 + timedelta(minutes=5), reports=False)

    with session_scope(url) as session:
        rows = {r.feature: r for r in session.scalars(select(DriftResult).where(
            DriftResult.feature.in_(prediction_drift.OUTPUT_COLUMNS)))}
    assert set(rows) == set(prediction_drift.OUTPUT_COLUMNS)
    assert not any(row.drifted for row in rows.values()), {k: (r.method, r.score) for k, r in rows.items()}
    cached = settings.var_dir / "references" / model_name / f"v{result.version}" / "outputs.parquet"
    assert cached.is_file()  # scored once; the next run reads it


def test_a_window_without_labels_gets_the_cbpe_estimate_calibrated_on_the_versions_earlier_labels(
        sqlite_url, tmp_path):
    earlier = _classification_rows(1500, T0 - timedelta(hours=1), seed=11)  # labelled, a while ago
    rng = np.random.default_rng(12)
    score = rng.beta(4, 2, 2000)  # covariate shift: more confident positives than before
    truth = (rng.random(2000) < score).astype(int)
    unlabelled = [{"id": f"now-{i}", "at": T0 + timedelta(seconds=i * 0.1), "prediction": str(int(s > 0.5)),
                   "score": float(s)} for i, s in enumerate(score)]
    _log(sqlite_url, earlier + unlabelled)

    summary = compute_windows(runtime_for(sqlite_url, None, _settings(tmp_path)), model_name=MODEL,
                              start=T0, end=T0 + timedelta(minutes=5))

    metrics = _metrics(sqlite_url)
    realised = skm.accuracy_score(truth, (score > 0.5).astype(int))
    value, count = metrics[(1, T0, "estimated_accuracy")]
    assert count == 2000 and value == pytest.approx(realised, abs=0.03)
    assert metrics[(1, T0, "estimated_roc_auc")][0] == pytest.approx(skm.roc_auc_score(truth, score), abs=0.03)
    assert (1, T0, metric_names.ACCURACY) not in metrics  # no label yet: only the estimate
    assert not [n for n in summary.notes if "no estimated performance" in n and T0.isoformat() in n]


def test_no_estimate_without_enough_earlier_labels_and_the_run_says_why(sqlite_url, tmp_path):
    _log(sqlite_url, _classification_rows(100, T0, seed=13, labelled_share=0.0))

    summary = compute_windows(runtime_for(sqlite_url, None, _settings(tmp_path)), model_name=MODEL,
                              start=T0, end=T0 + timedelta(minutes=5))

    assert not any(metric.startswith("estimated_") for _, _, metric in _metrics(sqlite_url))
    assert any("no estimated performance" in note for note in summary.notes), summary.notes
