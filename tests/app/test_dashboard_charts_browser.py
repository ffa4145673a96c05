"""The charts as chromium draws them in the first minutes of a story (one 5-minute window, three
alias moves a minute apart; see ``tiny_story``): every chart shows at least one data mark, its
time axis spans the range the session opened on (the shortest holding the data: 15 minutes here)
without a tick closer than a second to the next, and no two labels on a chart overlap."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from monitoring.store.engine import utcnow
from tests.app.browser_support import artifacts, exceptions, open_page, settle
from tests.app.conftest import serve_dashboard
from tests.app.tiny_story import seed_one_bucket

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres]

CHARTS = {"quality": 3, "service": 5, "drift": 3}  # page -> plotly charts on it
DRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => ({
    title: plot._fullLayout.title.text,
    range: plot._fullLayout.xaxis.range,
    ticks: (plot._fullLayout.xaxis._vals || []).map(tick => tick.x),
    traces: plot._fullData.map(t => ({type: t.type, yaxis: t.yaxis, y: t.y, z: t.z,
                                      mode: t.mode, size: t.marker ? t.marker.size : null})),
    marks: [...plot.querySelectorAll('.scatterlayer .point, .barlayer .point path, .hm image')]
        .map(mark => mark.getBoundingClientRect()).filter(box => box.width > 0 && box.height > 0).length,
    labels: [...plot.querySelectorAll('.annotation, .gtitle')].map(label => {
        const box = label.getBoundingClientRect();
        return [box.left, box.top, box.right, box.bottom];
    }),
}))"""


@pytest.fixture
def first_minutes(postgres_url, mlflow_store, model_name, tmp_path):
    seed_one_bucket(postgres_url, model_name, utcnow())
    env = {"VIGIL_DASHBOARD_ACCESS": "open", "VIGIL_DATABASE_URL": postgres_url, "MLFLOW_TRACKING_URI": mlflow_store,
           "VIGIL_MODEL_NAME": model_name, "VIGIL_VAR_DIR": str(tmp_path / "var")}
    with serve_dashboard(env) as base:
        yield base


def _data_points(trace: dict) -> int:
    """Points of a data trace that carry a value (the move markers' lane is not data)."""
    if trace["type"] == "heatmap":
        return sum(value is not None for row in trace["z"] for value in row)
    return sum(value is not None and value > 0 for value in trace["y"] or [])


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _check(chart: dict) -> None:
    name = chart["title"]
    data = [trace for trace in chart["traces"] if trace["yaxis"] != "y2"]
    assert sum(_data_points(trace) for trace in data) >= 1, name
    assert chart["marks"] >= 1, f"{name}: nothing drawn"
    start, end = (pd.Timestamp(value) for value in chart["range"])
    assert end - start >= timedelta(minutes=14), f"{name}: the axis spans {end - start}"
    assert len(chart["ticks"]) >= 2 and min(b - a for a, b in zip(chart["ticks"], chart["ticks"][1:], strict=False)) >= 1000, \
        f"{name}: ticks less than a second apart"
    labels = chart["labels"]
    assert not [(a, b) for i, a in enumerate(labels) for b in labels[i + 1:] if _overlap(a, b)], \
        f"{name}: labels overlap"


def test_every_chart_draws_the_first_window_on_the_whole_range(first_minutes, browser):
    for path, count in CHARTS.items():
        page = open_page(browser, f"{first_minutes}/{path}")
        settle(page)
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {count}")
        page.wait_for_timeout(1000)  # plotly draws after the element appears
        assert exceptions(page) == []
        charts = page.evaluate(DRAWN)
        assert len(charts) == count, path
        for chart in charts:
            _check(chart)
        quality = charts[0]
        if path == "quality":  # a single bucket: the accuracy point has a marker of its own
            (accuracy,) = [t for t in quality["traces"] if t["yaxis"] != "y2"]
            sizes = accuracy["size"] if isinstance(accuracy["size"], list) else [accuracy["size"]] * len(accuracy["y"])
            assert [s for y, s in zip(accuracy["y"], sizes, strict=False) if y is not None] == [7]
            lanes = [t for t in quality["traces"] if t["yaxis"] == "y2"]
            assert sorted(len(t["y"]) for t in lanes) == [1, 2]  # the three moves, as markers
        if path == "drift":  # the data-quality heatmap and the newest window's failed check
            (heatmap,) = [c for c in charts if "Failed data-quality checks" in str(c["title"])]
            assert sum(v is not None for row in heatmap["traces"][0]["z"] for v in row) == 4
            assert "1 of 4 checks failed" in page.locator('[data-testid="stAlert"]').all_inner_texts()[-1]
        page.screenshot(path=str(artifacts() / f"first-minutes-{path}.png"), full_page=True)
        page.context.close()
