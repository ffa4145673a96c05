"""The monitoring DAG's schedule meets every window end: every minute for the demo's 1-minute
windows, every 5 for the default, hourly for whole hours; a bad setting is a clear error."""

from __future__ import annotations

import pytest

from monitoring.metrics.schedule import configured_cron, monitoring_cron


@pytest.mark.parametrize(("minutes", "cron"), [(1, "* * * * *"), (5, "*/5 * * * *"), (7, "* * * * *"),
                                               (15, "*/15 * * * *"), (60, "0 * * * *"), (90, "*/30 * * * *"),
                                               (120, "0 * * * *")])
def test_a_run_at_every_window_end(minutes, cron):
    assert monitoring_cron(minutes) == cron


def test_the_environment_sets_the_window():
    assert configured_cron({"VIGIL_WINDOW_MINUTES": "1"}) == "* * * * *"
    assert configured_cron({}) == configured_cron({"VIGIL_WINDOW_MINUTES": ""}) == "*/5 * * * *"
    with pytest.raises(ValueError, match="whole number of minutes, not 'soon'"):
        configured_cron({"VIGIL_WINDOW_MINUTES": "soon"})
    with pytest.raises(ValueError, match="positive"):
        configured_cron({"VIGIL_WINDOW_MINUTES": "0"})
