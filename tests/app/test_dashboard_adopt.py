"""The Registry page's "Adopt a model" form, rendered headless (streamlit AppTest) on a real store
and a real MLflow store, with a model registered by a team's own code."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from monitoring.store.engine import session_scope
from monitoring.store.tables import AccessLog, RegistryEvent
from tests.team_models import register_team_version

ENTRY = Path(__file__).resolve().parents[2] / "app" / "dashboard" / "main.py"


@pytest.fixture
def dashboard_store(store_url, mlflow_store, model_name, monkeypatch, tmp_path):
    from monitoring.settings import reset_settings

    monkeypatch.setenv("VIGIL_DASHBOARD_ACCESS", "open")
    monkeypatch.setenv("VIGIL_DATABASE_URL", store_url)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    monkeypatch.setenv("VIGIL_MODEL_NAME", model_name)
    monkeypatch.setenv("VIGIL_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("VIGIL_MLFLOW_ARTIFACT_ROOT", str(Path(mlflow_store[len("sqlite:///"):]).parent / "artifacts"))
    reset_settings()
    yield store_url
    reset_settings()


def _registry_page(operator: str | None = None):
    from streamlit.testing.v1 import AppTest

    from app.dashboard.auth import OPERATOR_KEY

    app = AppTest.from_file(str(ENTRY), default_timeout=120)
    if operator:
        app.session_state[OPERATOR_KEY] = operator
    app.run()
    app.switch_page("views/registry.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _adopt(app, name: str, reference: str = ""):
    app.text_input(key="adopt_name").input(name).run()
    if reference:
        app.text_input(key="adopt_reference").input(reference).run()
    app.button(key="adopt_button").click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_an_operator_adopts_a_model_and_the_page_says_its_reference_is_pending(dashboard_store, mlflow_store,
                                                                               model_name):
    version = register_team_version(mlflow_store, model_name)

    anonymous = _adopt(_registry_page(), model_name)
    assert any("needs an operator login" in e.value for e in anonymous.error)

    app = _adopt(_registry_page(operator="dashboard:alice"), model_name)

    assert any(f"{model_name}: adopted, @champion is version {version}" in s.value for s in app.success)
    assert any(f"Drift reference of v{version}: none yet" in i.value for i in app.info)
    with session_scope(dashboard_store) as session:
        events = [(e.kind, e.actor, e.to_version) for e in session.scalars(
            select(RegistryEvent).where(RegistryEvent.model_name == model_name))]
        attempts = [(a.actor, a.allowed) for a in session.scalars(
            select(AccessLog).where(AccessLog.action == "adopt").order_by(AccessLog.id))]
    assert events == [("adopt", "dashboard:alice", version)]
    assert attempts == [("dashboard:anonymous", False), ("dashboard:alice", True)]


def test_a_refused_adoption_is_shown_and_recorded(dashboard_store):
    app = _adopt(_registry_page(operator="dashboard:bob"), "no-such-registered-model")

    assert any("Refused: no registered model named 'no-such-registered-model'" in e.value for e in app.error)
    with session_scope(dashboard_store) as session:
        assert session.scalars(select(RegistryEvent)).all() == []
        [attempt] = session.scalars(select(AccessLog).where(AccessLog.action == "adopt"))
    assert (attempt.actor, attempt.allowed) == ("dashboard:bob", False)
