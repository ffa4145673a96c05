"""The dashboard in a real browser: headless Debian chromium (Playwright) against ``streamlit run``,
on the real PostgreSQL and a real MLflow store with two trained versions.

Screenshots of every page are saved to ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitoring.store.engine import session_scope
from monitoring.store.tables import AccessLog, RegistryEvent
from tests.app.browser_support import OPERATOR_TOKEN as TOKEN
from tests.app.browser_support import artifacts, settle
from tests.app.browser_support import open_page as _open

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres]

PAGES = ("quality", "service", "drift", "registry", "alerts")


def _move(page, reason: str) -> None:
    """On the Registry page: roll back to v1 with ``reason``, preview, confirm."""
    page.get_by_text("Roll back", exact=True).click()
    settle(page)
    page.get_by_label("Target version").click()
    page.get_by_role("option", name="v1").click()
    settle(page)
    reason_box = page.get_by_label("Reason (required", exact=False)
    reason_box.fill(reason)
    reason_box.press("Control+Enter")
    settle(page)
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("Slack will say:").wait_for()
    settle(page)
    page.get_by_role("button", name="Confirm: roll back to v1").click()


def test_pages_render_and_only_an_operator_rolls_back(dashboard, trained, browser, model_name, postgres_url):
    registry, _env = trained
    shots = artifacts()

    overview = _open(browser, dashboard)
    overview.get_by_text("Champion").first.wait_for()
    champion = overview.locator('[data-testid="stMetric"]').filter(has_text="Champion").first
    assert champion.inner_text().split()[-1] == "v2"
    overview.screenshot(path=str(shots / "overview.png"), full_page=True)
    for name in PAGES:
        page = _open(browser, f"{dashboard}/{name}")
        page.get_by_role("heading", name=name.capitalize()).wait_for()
        if name != "alerts":
            page.locator(".js-plotly-plot, [data-testid='stDataFrame']").first.wait_for()
        page.wait_for_timeout(1500)  # let the charts draw before the picture
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        page.close()

    # an anonymous viewer is refused, the refusal recorded, nothing moved
    anonymous = _open(browser, f"{dashboard}/registry")
    _move(anonymous, "trying without a login")
    anonymous.get_by_text("The attempt was recorded.", exact=False).wait_for()  # not the sidebar caption
    anonymous.screenshot(path=str(shots / "registry-refused.png"), full_page=True)
    assert registry.alias_version(model_name, "champion") == 2
    with session_scope(postgres_url) as session:
        refused = session.execute(select(AccessLog.actor, AccessLog.action, AccessLog.allowed)
                                  .where(AccessLog.channel == "dashboard")).all()
    assert refused == [("dashboard:anonymous", "rollback", False)]

    # an operator logs in in the sidebar and rolls back; MLflow, the audit trail and the page change
    operator = _open(browser, dashboard)
    operator.get_by_label("Your name").fill("alice")
    operator.get_by_label("Operator key or token").fill(TOKEN)
    operator.get_by_role("button", name="Log in").click()
    operator.get_by_text("Operator: alice").wait_for()
    settle(operator)
    operator.get_by_role("link", name="Registry").click()  # same session: the login holds
    operator.get_by_role("heading", name="Registry").wait_for()
    operator.get_by_text("@champion: version 2").wait_for()
    _move(operator, "v2 answers slower in production")
    operator.get_by_text("moved from v2 to v1 by dashboard:alice").wait_for()
    operator.get_by_text("@champion: version 1").wait_for()
    operator.screenshot(path=str(shots / "registry-rolled-back.png"), full_page=True)

    assert registry.alias_version(model_name, "champion") == 1
    with session_scope(postgres_url) as session:
        event = session.scalars(select(RegistryEvent).where(RegistryEvent.model_name == model_name)
                                .order_by(RegistryEvent.id.desc())).first()
    assert (event.kind, event.actor, event.from_version, event.to_version, event.reason) == (
        "manual_rollback", "dashboard:alice", 2, 1, "v2 answers slower in production")
    operator.get_by_role("link", name="Overview").click()
    champion = operator.locator('[data-testid="stMetric"]').filter(has_text="Champion").first
    champion.get_by_text("v1").wait_for()
