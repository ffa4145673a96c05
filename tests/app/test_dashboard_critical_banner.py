"""A critical alert firing (here: the API cannot load the version @champion points at) is the first
thing on every dashboard page, whichever model is chosen, until it is resolved."""

from __future__ import annotations

import time

import pytest

from monitoring.store import alerts
from monitoring.store.engine import session_scope
from tests.app.browser_support import artifacts, exceptions, open_page, settle
from tests.app.conftest import serve_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres]

TITLE = "@champion points at version 3, which the API cannot load"


def _banner(page) -> list[str]:
    return [t for t in page.locator('[data-testid="stAlert"]').all_inner_texts() if TITLE in t]


def test_a_firing_critical_alert_is_a_banner_on_every_page_until_resolved(trained, browser, postgres_url,
                                                                         model_name):
    _registry, env = trained
    with session_scope(postgres_url) as session:
        alerts.raise_alert(session, key=f"serving:{model_name}:load", model_name=model_name,
                           kind="load_failure", severity="critical", title=f"{model_name}: {TITLE}",
                           facts={"version": 3})
    with serve_dashboard(env) as dashboard:
        for path in ("quality", "drift", ""):
            page = open_page(browser, f"{dashboard}/{path}")
            settle(page)
            assert exceptions(page) == [], exceptions(page)
            assert len(_banner(page)) == 1, (path, page.locator('[data-testid="stAlert"]').all_inner_texts())
            page.screenshot(path=str(artifacts() / f"critical-banner-{path or 'overview'}.png"), full_page=True)
            page.context.close()
        with session_scope(postgres_url) as session:
            alerts.resolve_alert(session, key=f"serving:{model_name}:load", facts={})
        deadline = time.monotonic() + 60  # the page's reads are cached for 20 s
        while True:
            page = open_page(browser, f"{dashboard}/quality")
            settle(page)
            gone = _banner(page) == []
            page.context.close()
            if gone:
                break
            assert time.monotonic() < deadline, "the resolved alert still shows after a minute"
            time.sleep(5)
