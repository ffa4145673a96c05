"""Attack: guess the operator token in the dashboard's login box. After N wrong ones the name and the
session are locked out, even with the right token, and no more rows are written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from monitoring.store.engine import session_scope
from monitoring.store.tables import AccessLog

TOKEN = "dashboard-lockout-token-0123456789"


def _login_panel() -> None:
    import streamlit as st

    from app.dashboard.auth import login_panel

    with st.sidebar:
        login_panel()


@pytest.fixture
def dashboard_store(sqlite_url, monkeypatch, tmp_path):
    from monitoring.settings import reset_settings

    monkeypatch.setenv("VIGIL_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("VIGIL_OPERATOR_TOKEN", TOKEN)
    monkeypatch.setenv("VIGIL_OPERATOR_MAX_FAILURES", "3")
    monkeypatch.setenv("VIGIL_VAR_DIR", str(tmp_path / "var"))
    reset_settings()
    yield sqlite_url
    reset_settings()


def _try(app, name: str, token: str):
    app.sidebar.text_input(key="operator_name").input(name)
    app.sidebar.text_input(key="operator_token").input(token)
    app.sidebar.button[0].click().run()
    return [error.value for error in app.sidebar.error]


def _refusals(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(AccessLog).where(AccessLog.allowed.is_(False)))


def test_three_wrong_tokens_lock_the_name_and_the_session(dashboard_store):
    from streamlit.testing.v1 import AppTest

    from app.dashboard.auth import OPERATOR_KEY

    guesser = AppTest.from_function(_login_panel, default_timeout=30).run()
    for _ in range(3):
        assert any("Wrong operator token" in e for e in _try(guesser, "mallory", "guess"))
    for name in ("mallory", "mallory2"):  # another name in the same session: still locked
        assert any("locked for" in e for e in _try(guesser, name, TOKEN))
    assert OPERATOR_KEY not in guesser.session_state
    assert _refusals(dashboard_store) == 3  # capped: 5 attempts, 3 rows

    other_session = AppTest.from_function(_login_panel, default_timeout=30).run()
    assert any("locked for" in e for e in _try(other_session, "mallory", TOKEN))  # the name, from the store
    _try(other_session, "alice", TOKEN)
    assert other_session.session_state[OPERATOR_KEY] == "dashboard:alice"
