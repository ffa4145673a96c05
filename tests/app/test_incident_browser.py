"""The incident page in chromium after a short scripted story with a real rollback: the watchdog
rolls a bad version back through the real code path (``evaluate_and_act``), the restored version
answers and recovers; the page opened by its URL (``/incidents?id=N``, as the Slack message links
it) in a fresh browser shows the timeline and the quality test's trajectory as drawn plotly
traces with visible marks; Overview and Quality show the watchdog's live evidence."""

from __future__ import annotations

import pytest

from monitoring.registry.mlflow_registry import Registry
from monitoring.store import incidents as store_incidents
from tests.app.browser_support import artifacts, exceptions, open_page, settle
from tests.app.conftest import serve_dashboard
from tests.monitoring.watchdog import conftest as watchdog

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres]

trained = watchdog.trained  # the watchdog tests' trained versions: good, bad (corrupted labels), other

DRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => ({
    title: plot._fullLayout.title.text.replace(/<[^>]+>/g, ''),  // the theme wraps it in <b>
    traces: plot._fullData.map(t => ({name: t.name, x: t.x, y: t.y})),
    marks: [...plot.querySelectorAll('.scatterlayer .point')]
        .map(mark => mark.getBoundingClientRect()).filter(box => box.width > 0 && box.height > 0).length,
}))"""


@pytest.fixture
def rolled_back(postgres_url, mlflow_store, model_name, tmp_path, trained):
    """A good champion, a bad one promoted and rolled back by the watchdog, the good one recovering;
    the dashboard over that store. Yields (base URL, incident id, good version, bad version)."""
    settings = watchdog._settings(postgres_url, mlflow_store, tmp_path)
    world = watchdog.World(postgres_url, settings, Registry(settings), trained, model_name)
    good = world.add("good", health="healthy")
    bad = world.add("bad")
    world.serve(bad, 200, seed=21)
    assert world.evaluate()[0].action == "rollback"
    world.serve(good, 400, seed=22)
    world.evaluate()
    [(_name, move)] = store_incidents.rollbacks(postgres_url, model_name)
    env = {"VIGIL_DASHBOARD_ACCESS": "open", "VIGIL_DATABASE_URL": postgres_url, "MLFLOW_TRACKING_URI": mlflow_store,
           "VIGIL_MODEL_NAME": model_name, "VIGIL_VAR_DIR": str(tmp_path / "var"),
           "VIGIL_MLFLOW_ARTIFACT_ROOT": settings.mlflow_artifact_root}
    with serve_dashboard(env) as base:
        yield base, move.id, good, bad


def _charts(page, count: int) -> list[dict]:
    settle(page)
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {count}")
    page.wait_for_timeout(1000)  # plotly draws after the element appears
    assert exceptions(page) == []
    return page.evaluate(DRAWN)


def test_the_incident_page_tells_the_rollback_by_its_url(rolled_back, browser):
    base, incident_id, good, bad = rolled_back
    page = open_page(browser, f"{base}/incidents?id={incident_id}")
    charts = {chart["title"]: chart for chart in _charts(page, 2)}

    timeline = charts["Timeline"]
    assert timeline["traces"][0]["y"] == [
        "promotion", "first answer of the new version", "quality test crossed its boundary",
        "rollback committed", f"API serving version {good}", "recovered message"]
    assert timeline["marks"] >= 5  # the rollback and the restored answer may share a pixel row's time
    trajectory = charts[f"Quality test of v{bad} up to the rollback"]
    walk = trajectory["traces"][0]
    assert len(walk["y"]) >= 30 and trajectory["marks"] >= 30
    assert any(trace["name"] == "crossed: degraded" for trace in trajectory["traces"])
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert f"version {bad} rolled back to version {good} by the watchdog" in text
    assert "Wrong answers served" in text and "Slack is not configured" in text
    assert "/incidents?id=" in text  # the Slack thread as sent links back here
    page.screenshot(path=str(artifacts() / "incident.png"), full_page=True)
    page.context.close()


def test_overview_and_quality_show_the_watchdogs_live_evidence(rolled_back, browser):
    base, _incident_id, good, _bad = rolled_back
    for path, count in (("", 1), ("quality", 1)):  # no monitoring window in this story: the live test only
        page = open_page(browser, f"{base}/{path}")
        charts = _charts(page, count)
        live = [c for c in charts if c["title"] == f"Quality test of v{good}, label by label (the last 200)"]
        assert live and live[0]["marks"] >= 1 and len(live[0]["traces"][0]["y"]) >= 30, path
        text = page.locator('[data-testid="stMain"]').inner_text()
        assert f"Watchdog now: v{good}" in text and "Labels since it took over" in text, path
        if path == "":
            assert "Mean time to recover (30 d)" in text and "1 rollback, 1 by the watchdog" in text
        page.screenshot(path=str(artifacts() / f"live-{path or 'overview'}.png"), full_page=True)
        page.context.close()
