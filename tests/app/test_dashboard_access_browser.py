"""Attack: open the dashboard's address in a fresh browser. With VIGIL_DASHBOARD_ACCESS=login (the
default) it shows the login and no page or data; after the operator login the pages are there."""

from __future__ import annotations

from tests.app.browser_support import open_page, settle
from tests.app.conftest import serve_dashboard

TOKEN = "access-browser-test-token-0123456789"


def test_a_fresh_browser_sees_the_login_not_the_data(sqlite_url, browser, tmp_path):
    env = {"VIGIL_DATABASE_URL": sqlite_url, "VIGIL_OPERATOR_TOKEN": TOKEN,
           "VIGIL_VAR_DIR": str(tmp_path / "var"), "VIGIL_DASHBOARD_ACCESS": "login"}
    with serve_dashboard(env) as base:
        for path in ("/", "/registry", "/alerts"):
            page = open_page(browser, base + path)
            settle(page)
            assert page.get_by_role("heading", level=1).inner_text() == "Vigil: log in"
            body = page.locator("body").inner_text()
            assert "Overview" not in body and "Registry" not in body, body
            page.close()
        page = open_page(browser, base + "/")
        page.get_by_label("Your name").fill("alice")
        page.get_by_label("Operator key or token").fill(TOKEN)
        page.get_by_role("button", name="Log in").click()
        settle(page)
        page.get_by_text("Operator: alice").wait_for()
        assert "Vigil: log in" not in page.locator("body").inner_text()
