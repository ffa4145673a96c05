"""GET /model, /health, /health/ready, /metrics and /docs of a running app."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from monitoring.metrics import process_scrape
from tests.api.conftest import demo_rows


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_model_info_names_the_champion_and_its_registration_metrics(shared_client, shared_settings):
    info = shared_client.get("/model").json()
    assert info["model_name"] == shared_settings.model_name
    assert info["loaded"] is True
    assert info["version"] == 1 and info["alias_version"] == 1
    assert info["alias"] == "champion"
    assert 0.5 < info["metrics"]["accuracy"] <= 1.0
    assert info["champion_since"] is not None and info["loaded_at"] is not None
    assert {"name": "age", "kind": "number"} in info["features"]
    assert {"name": "region", "kind": "string"} in info["features"]
    assert info["fast_path"] is True and info["micro_batched"] is False
    assert info["task"] == "classification" and info["positive_class"] == 1
    assert info["flavor"] == "mlflow.sklearn" and info["load_failure"] is None


def test_liveness_and_readiness(shared_client):
    health = shared_client.get("/health").json()
    assert health["status"] == "ok" and health["open_access"] is True and "OPEN_ACCESS" in health["warning"]
    ready = shared_client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True, "model_loaded": True, "model_version": 1, "alias_version": 1,
        "model_source": "registry", "store_reachable": True,
        "registry_reachable": True, "problems": [],
        # no watchdog runs beside this app: said, but serving does not depend on it
        "watchdog": {"seconds_since_last_evaluation": None, "stale": True, "threshold_seconds": 120.0,
                     "last_watcher": None},
        "notes": ["no watchdog has run yet: nothing rolls back a bad version"],
        "models": [{"model_name": shared_client.app.state.settings.model_name, "loaded": True, "version": 1,
                    "alias_version": 1, "source": "registry", "load_failure": None, "problems": []}]}


def test_metrics_count_requests_errors_rows_and_expose_process_gauges(shared_client, shared_settings):
    before = _samples(shared_client.get("/metrics").text)
    shared_client.post("/predict", json=demo_rows(4))
    shared_client.post("/predict", json=demo_rows(1)[0])
    shared_client.post("/predict", json={"nope": 1})
    shared_client.get("/no/such/path")
    text = shared_client.get("/metrics").text
    after = _samples(text)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("vigil_http_requests_total", method="POST", path="/predict", status="200") == 2
    assert delta("vigil_http_requests_total", method="POST", path="/predict", status="422") == 1
    assert delta("vigil_http_requests_total", method="GET", path="other", status="404") == 1
    assert delta("vigil_http_errors_total", path="/predict", kind="client") == 1
    assert delta("vigil_predictions_total", model_name=shared_settings.model_name, model_version="1") == 5
    assert delta("vigil_http_request_duration_seconds_count", path="/predict") == 3
    assert after[("vigil_model_version", (("model_name", shared_settings.model_name),))] == 1
    assert ("vigil_prediction_log_queue_rows", ()) in after
    assert after[("vigil_prediction_log_dropped_rows_total", ())] == 0
    assert after[("vigil_registry_reachable", ())] == 1
    assert after[("vigil_watchdog_seconds_since_last_evaluation", ())] == float("inf")  # none ran
    # the monitoring pipeline reads the process gauges from this very text
    process = process_scrape.parse(text)
    assert process["memory_mb"] > 50
    assert process["cpu_percent"] >= 0


def test_openapi_describes_predict_with_the_models_features(shared_client):
    assert shared_client.get("/docs").status_code == 200
    spec = shared_client.get("/openapi.json").json()
    row = spec["components"]["schemas"]["PredictRow"]
    assert row["properties"]["age"] == {"type": "number"}
    assert row["properties"]["region"] == {"type": "string"}
    assert row["additionalProperties"] is False
    assert set(spec["paths"]) >= {"/predict", "/feedback", "/model", "/health", "/health/ready", "/metrics",
                                  "/operator/promote", "/operator/rollback"}
