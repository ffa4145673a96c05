"""Several models served by one API (``VIGIL_SERVED_MODELS``), each registered by test code as a
team would: each answers ``/predict/<name>`` with its own version and checks its own features, an
alias move swaps only its own model, an operator acts on the model named (its alias, its canary),
labels come back for both, one model that cannot be loaded leaves the others ready, and the monitoring run computes
each model's windows from the rows logged under its own name."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import mlflow
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from api.main import create_app
from monitoring.metrics.window_pipeline import compute_windows
from monitoring.metrics.windows import window_containing
from monitoring.runtime import Runtime
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import Feedback, MetricWindow, Prediction
from tests import model_matrix
from tests.api.conftest import OPERATOR_TOKEN, demo_rows
from tests.team_models import register_team_version

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def _until(check, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _metric(text: str, name: str, model: str, **labels: str) -> float:
    wanted = {"model_name": model, **labels}
    return next(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                if sample.name == name and sample.labels == wanted)


def test_several_models_are_served_swapped_labelled_and_monitored_each_on_its_own(api_settings, tmp_path):
    loans = api_settings.model_name  # the default: /predict answers it
    scores, broken = f"{loans}-scores", f"{loans}-broken"
    register_team_version(api_settings.mlflow_tracking_uri, loans)
    own = {name: api_settings.model_copy(update={"model_name": name}) for name in (scores, broken)}
    model_matrix.register(own[scores], "rf-cloudpickle", tmp=tmp_path)
    second = model_matrix.register(own[scores], "rf-cloudpickle", tmp=tmp_path, bad=True, promote=False)
    model_matrix.register(own[broken], "no-signature", tmp=tmp_path)
    settings = api_settings.model_copy(update={"served_models": [scores, broken, loans]})
    loan_rows, score_rows = demo_rows(6), model_matrix.request_rows(6)
    served: Counter[tuple[str, int]] = Counter()  # rows answered, by model and version
    started = utcnow()

    with TestClient(create_app(settings)) as client:
        def predict(path: str, body, caller: str = "") -> dict:
            answer = client.post(path, json=body, headers={"X-Vigil-Caller": caller} if caller else None)
            assert answer.status_code == 200, answer.text
            found = answer.json()
            served[(found["model_name"], found["model_version"])] += len(found.get("predictions", [found]))
            return found

        ready = client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        states = {m["model_name"]: m for m in ready.json()["models"]}
        assert list(states) == [loans, scores, broken]
        assert (states[loans]["version"], states[scores]["version"]) == (1, 1)
        assert not states[broken]["loaded"] and "cannot be loaded" in states[broken]["load_failure"]
        assert any(note.startswith(f"{broken}: ") for note in ready.json()["notes"])
        assert client.post(f"/predict/{broken}", json=score_rows[0]).status_code == 503

        default = predict("/predict", loan_rows[0])
        named = predict(f"/predict/{loans}", loan_rows[1])
        batch = predict(f"/predict/{scores}", score_rows[:3])
        assert (default["model_name"], default["model_version"]) == (loans, 1)
        assert (named["model_name"], named["model_version"]) == (loans, 1)
        assert (batch["model_name"], batch["model_version"], len(batch["predictions"])) == (scores, 1, 3)
        # each model checks its own features
        assert client.post(f"/predict/{scores}", json=loan_rows[2]).status_code == 422
        assert client.post("/predict", json=score_rows[3]).status_code == 422
        unknown = client.post("/predict/nope", json=loan_rows[2])
        assert unknown.status_code == 404 and all(name in unknown.json()["detail"] for name in (loans, scores))

        # moved outside Vigil: only that model swaps
        mlflow.MlflowClient(settings.mlflow_tracking_uri).set_registered_model_alias(
            scores, "champion", str(second.version))
        _until(lambda: predict(f"/predict/{scores}", score_rows[3])["model_version"] == 2, f"{scores} v2 served")
        assert predict("/predict", loan_rows[3])["model_version"] == 1
        metrics = client.get("/metrics").text
        assert _metric(metrics, "vigil_model_version", scores) == 2
        assert _metric(metrics, "vigil_model_version", loans) == 1
        assert _metric(metrics, "vigil_model_swaps_total", loans) == 1
        assert _metric(metrics, "vigil_champion_load_failed", broken) == 1
        counted = [sample for family in text_string_to_metric_families(metrics) for sample in family.samples
                   if sample.name == "vigil_http_requests_total" and sample.labels["path"] == "/predict/{model_name}"]
        assert {sample.labels["status"] for sample in counted} >= {"200", "404", "422", "503"}

        # the operator endpoints act on the model named; an unknown one changes nothing
        refused = client.post("/operator/promote", headers=OPERATOR, json={
            "model_name": "nope", "version": 1, "reason": "wrong name", "operator": "alice"})
        assert refused.status_code == 404 and scores in refused.json()["detail"]
        moved = client.post("/operator/promote", headers=OPERATOR, json={
            "model_name": scores, "version": 1, "reason": "back to v1", "operator": "alice"})
        assert moved.status_code == 200 and moved.json()["model_name"] == scores, moved.text
        _until(lambda: predict(f"/predict/{scores}", score_rows[4])["model_version"] == 1, f"{scores} v1 again")
        assert client.get("/model", params={"model_name": scores}).json()["version"] == 1
        assert client.get("/model").json()["model_name"] == loans
        assert predict("/predict", loan_rows[4])["model_version"] == 1

        # a release of its own: a canary of v2 answers some of that model's callers, none of the other's
        canary = client.post("/operator/canary", headers=OPERATOR, json={
            "model_name": scores, "version": second.version, "share": 0.9, "bake_minutes": 60,
            "reason": "try v2", "operator": "alice"})
        assert canary.status_code == 200 and canary.json()["release"]["model_name"] == scores, canary.text
        callers = [f"caller-{i}" for i in range(6)]
        _until(lambda: any(predict(f"/predict/{scores}", score_rows[5], caller)["role"] == "canary"
                           for caller in callers), f"{scores}'s canary answering")
        assert {predict("/predict", loan_rows[5], caller)["role"] for caller in callers} == {"champion"}
        assert _metric(client.get("/metrics").text, "vigil_challenger_version", scores, mode="canary") == 2
        ended = {"reason": "enough", "operator": "alice"}
        assert client.post("/operator/release/abort", headers=OPERATOR, json=ended).status_code == 409
        assert client.post("/operator/release/abort", headers=OPERATOR,
                           json={**ended, "model_name": scores}).status_code == 200

        labels = [{"prediction_id": default["prediction_id"], "label": default["prediction"]},
                  {"prediction_id": batch["predictions"][0]["prediction_id"],
                   "label": batch["predictions"][0]["prediction"]}]
        taken = client.post("/feedback", json=labels)
        assert taken.status_code == 200 and taken.json()["received"] == 2, taken.text
        url = settings.database_url
        _until(lambda: _logged(url) == served, "every answered row logged")

    with session_scope(url) as session:
        labelled = set(session.scalars(select(Feedback.model_name)))
    assert labelled == {loans, scores}
    assert {key for key in served if key[0] == scores} == {(scores, 1), (scores, 2)}

    runtime = Runtime(settings)
    start = window_containing(started, settings.window_minutes).start - timedelta(microseconds=1)
    end = window_containing(utcnow(), settings.window_minutes).end
    for name in (loans, scores):
        compute_windows(runtime, model_name=name, start=start, end=end, reports=False)
    with session_scope(url) as session:
        requests = session.execute(
            select(MetricWindow.model_name, MetricWindow.model_version, func.sum(MetricWindow.value))
            .where(MetricWindow.metric == "requests")
            .group_by(MetricWindow.model_name, MetricWindow.model_version)).all()
    assert {(name, version): int(total) for name, version, total in requests} == served


def _logged(url: str) -> Counter[tuple[str, int]]:
    with session_scope(url) as session:
        rows = session.execute(select(Prediction.model_name, Prediction.model_version, func.count())
                               .group_by(Prediction.model_name, Prediction.model_version)).all()
    return Counter({(name, version): count for name, version, count in rows})
