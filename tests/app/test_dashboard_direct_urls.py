"""Every dashboard page opened straight by its URL (a bookmark, a reload, a pasted link) in a fresh
browser context, on a fresh server whose first visitor lands there: the page renders, no traceback,
and the sidebar lists the pages by their titles.

Regression: the pages lived in ``app/dashboard/pages/``, which Streamlit takes for a v1 multipage
app until the entry script has called ``st.navigation`` once in the process; a first visit to
``/quality`` then ran the page without the entry script (``KeyError: vigil_view``) and the sidebar
listed the file names.
"""

from __future__ import annotations

import pytest

from tests.app.browser_support import artifacts, exceptions, open_page, settle, sidebar_titles

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres]

TITLES = ["Overview", "Quality", "Service", "Drift", "Registry", "Release", "Policy", "Alerts", "Incidents",
          "Access"]
PATHS = {"Quality": "quality", "Service": "service", "Drift": "drift", "Registry": "registry", "Release": "release",
         "Policy": "policy",
         "Alerts": "alerts", "Incidents": "incidents", "Access": "access", "Overview": ""}  # the first visit is to a page that is not the default


def test_every_page_renders_when_opened_by_its_url_in_a_new_session(dashboard, browser):
    shots = artifacts()
    for title, path in PATHS.items():
        page = open_page(browser, f"{dashboard}/{path}")
        settle(page)
        assert exceptions(page) == [], (path, exceptions(page))
        assert page.get_by_role("heading", level=1).first.inner_text() == title
        assert sidebar_titles(page) == TITLES
        page.screenshot(path=str(shots / f"direct-{path or 'overview'}.png"), full_page=True)
        page.context.close()
