"""The Release page in chromium over a running canary seeded through the real entry points
(``start_release``, the prediction log's and the labels' own writers): opened by its URL in a fresh
context, every chart draws data marks, and Promote/Abort appear for an operator only; an operator's
abort ends the release and the page falls back to its empty state."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest

from monitoring.store.engine import utcnow
from tests.app.browser_support import OPERATOR_TOKEN, exceptions, open_page, settle
from tests.app.conftest import serve_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres]

MARKS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => ({
    title: plot._fullLayout.title.text.replace(/<[^>]+>/g, ''),
    points: plot._fullData.reduce((n, t) => n + (t.y || []).filter(v => v !== null && !Number.isNaN(v)).length, 0),
    marks: [...plot.querySelectorAll('.scatterlayer .point, .scatterlayer .js-line')]
        .map(mark => mark.getBoundingClientRect()).filter(box => box.width > 0 || box.height > 0).length,
}))"""


def _traffic(url: str, release, minutes: int = 10, per_minute: int = 30) -> None:
    """Champion and canary rows since the release started, each with its label (the store's writers)."""
    from monitoring.store.feedback import record_feedback
    from monitoring.store.prediction_rows import encode_rows, insert_ignoring_duplicates, new_prediction_id

    rng, labels, rows = random.Random(5), {}, []
    for minute in range(minutes):
        for i in range(per_minute):
            canary = i % 5 == 0
            at = release.started_at + timedelta(minutes=minute, seconds=i)
            pid, truth = new_prediction_id(), rng.choice(["0", "1"])
            guess = truth if rng.random() < (0.8 if canary else 0.85) else ("1" if truth == "0" else "0")
            rows += encode_rows(False, model_name=release.model_name,
                                model_version=release.challenger_version if canary else release.champion_version,
                                created_at=at, ids=[pid], features_json=[json.dumps({"x": 1})], predictions=[guess],
                                scores=[None], latency_ms=25.0 if canary else 20.0,
                                role="canary" if canary else "champion")
            labels[pid] = truth
    insert_ignoring_duplicates(url, rows)
    record_feedback(url, labels, release.model_name)


@pytest.fixture
def running_canary(postgres_url, mlflow_store, model_name, monkeypatch, tmp_path):
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.registry.releases import start_release
    from monitoring.runtime import Runtime
    from monitoring.settings import get_settings, reset_settings
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    env = {"VIGIL_DATABASE_URL": postgres_url, "MLFLOW_TRACKING_URI": mlflow_store, "VIGIL_MODEL_NAME": model_name,
           "VIGIL_OPERATOR_TOKEN": OPERATOR_TOKEN, "VIGIL_DASHBOARD_ACCESS": "open",
           "VIGIL_VAR_DIR": str(tmp_path / "var"),
           "VIGIL_MLFLOW_ARTIFACT_ROOT": str(Path(mlflow_store[len("sqlite:///"):]).parent / "artifacts")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    registry = Registry(get_settings())
    for seed in (1, 2):
        train(datasets.generate(300, seed), registry=registry, store_url=postgres_url, model_name=model_name,
              actor="cli:test", promote=seed == 1, seed=seed)
    release = start_release(Runtime(get_settings(), registry), model_name=model_name, version=2, mode="canary",
                            share=0.2, actor="cli:test", reason="browser test", bake_minutes=60,
                            now=utcnow() - timedelta(minutes=12))
    _traffic(postgres_url, release)
    with serve_dashboard(env) as base:
        yield base, registry, model_name
    reset_settings()


def test_the_release_page_draws_a_running_canary_and_offers_actions_to_an_operator_only(running_canary, browser):
    base, registry, name = running_canary
    viewer = open_page(browser, f"{base}/release")
    settle(viewer)
    viewer.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 4")
    viewer.wait_for_timeout(1000)  # plotly draws after the element appears
    assert exceptions(viewer) == []
    assert viewer.get_by_role("heading", level=1).first.inner_text() == "Release"
    drawn = viewer.evaluate(MARKS)
    assert sorted(chart["title"] for chart in drawn) == sorted(
        ["Quality", "Traffic share", "Latency p95", "The judge's progress toward a verdict"])
    for chart in drawn:
        assert chart["points"] >= 2 and chart["marks"] >= 1, chart
    assert viewer.get_by_text("Canary of v2 against champion v1").count() == 1
    assert viewer.get_by_role("button", name="Abort the release").count() == 0
    assert viewer.get_by_role("button", name="Promote the challenger").count() == 0
    viewer.context.close()

    operator = open_page(browser, f"{base}/release")
    settle(operator)
    operator.get_by_label("Your name (with the shared token)").fill("alice")
    operator.get_by_label("Operator key or token").fill(OPERATOR_TOKEN)
    operator.get_by_role("button", name="Log in").click()
    operator.get_by_text("Operator: alice").wait_for()
    settle(operator)
    operator.get_by_role("button", name="Promote the challenger").wait_for()
    operator.get_by_label("Reason (required, goes into the audit trail and the release's Slack thread)") \
        .fill("seen enough in the browser")
    operator.get_by_role("button", name="Abort the release").click()
    operator.get_by_text("by dashboard:alice").wait_for()
    operator.get_by_text("No release running; start one with").wait_for()
    assert exceptions(operator) == []
    assert registry.alias_version(name, "challenger") is None
    operator.context.close()
