"""Helpers of the dashboard's browser tests: where artifacts go, opening a page in a fresh browser
context, waiting for Streamlit to finish a run, and reading what a page rendered."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
OPERATOR_TOKEN = "browser-test-operator-token"
WAIT_MS = 60_000
EXCEPTION = '[data-testid="stException"]'


def artifacts() -> Path:
    """Where browser tests leave their screenshots and the server's log."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def open_page(browser, url: str):
    """``url`` in a new browser context (no cookies, no session): a bookmark opened anew."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    page.get_by_role("heading", level=1).or_(page.locator(EXCEPTION)).first.wait_for()
    return page


def settle(page) -> None:
    """Wait until the script run that is under way (or the last interaction started) has finished."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")


def exceptions(page) -> list[str]:
    """The text of every exception Streamlit shows on the page."""
    return page.locator(EXCEPTION).all_inner_texts()


def sidebar_titles(page) -> list[str]:
    """The page titles the sidebar's navigation lists, in order (without their icons)."""
    return page.locator('[data-testid="stSidebarNavLink"] [data-testid="stMarkdownContainer"]').all_inner_texts()
