"""Script-bearing feature values, from the real ``POST /predict`` and a batch file, through the
window's Evidently report, viewed on the Drift page in real chromium: nothing they carry executes.

The API refuses values with ``<``, ``>`` or control characters (422) and takes entity-encoded or
quote-bearing ones; a batch file is not checked that way, so its values reach the report as sent.
Both kinds are in the window's report; the test opens the Drift page like an operator and looks
for the marker each payload would set in every frame, and for any dialog.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.api.conftest import demo_rows, make_settings, running_api, train_version
from tests.app.browser_support import OPERATOR_TOKEN, artifacts, settle
from tests.app.conftest import serve_dashboard
from tests.runtimes import runtime_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres]

WINDOW_MINUTES = 60
REFUSED_BY_THE_API = ["</script><script>window.__pwned=1</script>", "<img src=x onerror=window.__pwned=2>",
                      "<svg onload=window.__pwned=3>"]
TAKEN_BY_THE_API = ["&lt;img src=x onerror=window.__pwned=4&gt;", '" autofocus onfocus="window.__pwned=5',
                    "javascript:window.__pwned=6"]
MARKER = "() => window.__pwned === undefined ? null : String(window.__pwned)"
SANDBOX_PROBE = """() => {
    try { parent.document.title; return [window.origin, "read the dashboard"]; }
    catch (error) { return [window.origin, error.name]; }
}"""


def _clear_of_the_window_edge() -> None:
    """Wait while the current window ends within two minutes, so all traffic lands in one window."""
    from monitoring.metrics.windows import window_containing
    from monitoring.store.engine import utcnow

    while window_containing(utcnow(), WINDOW_MINUTES).end - utcnow() < timedelta(minutes=2):
        time.sleep(5)


def _through_the_api(settings) -> None:
    rows = demo_rows(60, seed=3)
    with running_api(settings) as base:
        for value in REFUSED_BY_THE_API:
            refused = httpx.post(f"{base}/predict", json={**rows[0], "purpose": value}, timeout=30)
            assert refused.status_code == 422, refused.text
            assert "'purpose'" in refused.json()["detail"]
        batch = [{**row, "purpose": TAKEN_BY_THE_API[i % 3]} for i, row in enumerate(rows)]
        taken = httpx.post(f"{base}/predict", json=batch[:50], timeout=30)
        assert taken.status_code == 200, taken.text


def _from_a_batch_file(runtime, tmp_path, window) -> None:
    from monitoring.serving.batch import score_batch

    frame = pd.DataFrame(demo_rows(60, seed=4))
    frame["purpose"] = [REFUSED_BY_THE_API[i % 3] for i in range(len(frame))]
    frame.to_csv(tmp_path / "partner.csv", index=False)
    score_batch(runtime, interval_start=window.start, interval_end=window.end,
                input_path=tmp_path / "partner.csv")


@pytest.fixture
def hostile_report(postgres_url, mlflow_store, model_name, tmp_path):
    """A champion, hostile traffic from the API and a batch file, and the window computed with its
    report; yields the dashboard's environment and the report's path."""
    from monitoring.metrics.window_pipeline import compute_windows
    from monitoring.metrics.windows import window_containing
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.store.engine import utcnow

    settings = make_settings(postgres_url, mlflow_store, tmp_path / "var", model_name=model_name,
                             window_minutes=WINDOW_MINUTES)
    train_version(settings)
    _clear_of_the_window_edge()
    _through_the_api(settings)
    runtime = runtime_for(postgres_url, Registry(settings), settings)
    now = utcnow()
    window = window_containing(now, WINDOW_MINUTES)
    _from_a_batch_file(runtime, tmp_path, window)
    summary = compute_windows(runtime, model_name=model_name, start=window.start, end=window.end,
                              reports=True, now=now)
    assert len(summary.reports) == 1, summary.as_dict()
    env = {"VIGIL_DATABASE_URL": postgres_url, "MLFLOW_TRACKING_URI": mlflow_store,
           "VIGIL_MODEL_NAME": model_name, "VIGIL_OPERATOR_TOKEN": OPERATOR_TOKEN, "VIGIL_DASHBOARD_ACCESS": "open",
           "VIGIL_VAR_DIR": str(settings.var_dir), "VIGIL_MLFLOW_ARTIFACT_ROOT": settings.mlflow_artifact_root,
           "VIGIL_WINDOW_MINUTES": str(WINDOW_MINUTES)}
    return env, summary.reports[0]


def _open_the_details(report_frame, feature: str) -> list[str]:
    """Find ``feature`` in the report's table, open its detail panel so its distribution charts
    draw, and return the texts the report's charts show."""
    report_frame.get_by_placeholder("Search").fill(feature)
    row = report_frame.locator("tr", has_text=feature)
    row.get_by_role("button", name="Detail panel visibility toggle").click()
    report_frame.locator(".js-plotly-plot").first.wait_for()
    return report_frame.locator("svg text").all_text_contents()


def test_the_report_on_the_drift_page_executes_nothing_a_client_sent(hostile_report, browser):
    env, report = hostile_report
    saved = Path(report).read_text(encoding="utf-8")
    for value in REFUSED_BY_THE_API + TAKEN_BY_THE_API[:2]:
        assert value not in saved  # only escaped forms of markup-bearing values are stored
    assert "__pwned" in saved  # ... but the values are in the report

    with serve_dashboard(env) as base:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{base}/drift")
            page.get_by_role("heading", name="Drift").wait_for()
            settle(page)
            page.locator("iframe").first.wait_for()
            page.wait_for_timeout(3_000)
            assert _markers(page) == [], "a payload ran as the report was parsed"
            report_frame = page.frame_locator("iframe").first.frame_locator(
                'iframe[title="Evidently drift report"]')
            report_frame.locator("[id^=root_metric_] *").first.wait_for()
            drawn = _open_the_details(report_frame, "purpose")
            page.wait_for_timeout(3_000)
            page.locator("iframe").first.screenshot(path=str(artifacts() / "drift-hostile-report.png"))
            assert _markers(page) == [], "a payload ran as the report drew its charts"
            nested = [f for f in page.frames if f.parent_frame and f.parent_frame.parent_frame]
            rights = [f.evaluate(SANDBOX_PROBE) for f in nested]
        finally:
            page.close()

    # the report drew the hostile categories in its charts, as plain text: they had their chance
    assert {"</script><script>window.__pwned=1</script>", "<svg onload=window.__pwned=3>",
            "&lt;img src=x onerror=window.__pwned=4&gt;"} <= set(drawn), drawn
    assert dialogs == []
    # the report runs in an opaque origin: its scripts cannot read or drive the dashboard
    assert rights == [["null", "SecurityError"]]


def _markers(page) -> list[tuple[str, str]]:
    """Every frame of the page in which a payload set its marker: (frame url, marker)."""
    found = [(frame.url[:40], frame.evaluate(MARKER)) for frame in page.frames]
    return [(url, marker) for url, marker in found if marker is not None]
