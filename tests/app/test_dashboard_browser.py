"""The dashboard in a real browser: headless Debian chromium (Playwright) against ``streamlit run``,
on the real PostgreSQL and a real MLflow store with two trained versions.

Screenshots of every page are saved to ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import AccessLog, RegistryEvent
from tests.net import free_port, wait_until_healthy

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
TOKEN = "browser-test-operator-token"
PAGES = ("quality", "service", "drift", "registry", "alerts")
WAIT_MS = 60_000


@pytest.fixture
def trained(postgres_url, mlflow_store, model_name, monkeypatch, tmp_path):
    """Two trained versions (v2 is champion), a day of windows and logged predictions for them."""
    from cli.demo_seed import ChampionSpan, seed_predictions, seed_windows
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.settings import get_settings, reset_settings
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    env = {"VIGIL_DATABASE_URL": postgres_url, "MLFLOW_TRACKING_URI": mlflow_store,
           "VIGIL_MODEL_NAME": model_name, "VIGIL_OPERATOR_TOKEN": TOKEN,
           "VIGIL_VAR_DIR": str(tmp_path / "var"),
           "VIGIL_MLFLOW_ARTIFACT_ROOT": str(Path(mlflow_store[len("sqlite:///"):]).parent / "artifacts")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    registry = Registry(get_settings())
    for seed_value in (1, 2):
        train(datasets.generate(1_500, seed_value), registry=registry, store_url=postgres_url,
              model_name=model_name, actor="cli:test", promote=True, seed=seed_value)
    now = utcnow().replace(second=0, microsecond=0)
    spans = [ChampionSpan(1, now - timedelta(days=1), now - timedelta(hours=6)),
             ChampionSpan(2, now - timedelta(hours=6), now)]
    seed_windows(postgres_url, model_name, spans, drift_every_minutes=30, drift_from=now - timedelta(hours=2))
    seed_predictions(postgres_url, model_name, spans, 300)
    yield registry, env
    reset_settings()


@pytest.fixture
def dashboard(trained):
    """``streamlit run`` on a free loopback port; its base URL."""
    _registry, env = trained
    port = free_port()
    log = open(_artifacts() / "server.log", "w")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "dashboard" / "main.py"),
         "--server.headless=true", f"--server.port={port}", "--server.address=127.0.0.1",
         "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"],
        cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{base}/_stcore/health", what="streamlit", alive=lambda: process.poll() is None)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    page.get_by_role("heading", level=1).first.wait_for()
    return page


def _settle(page) -> None:
    """Wait until the script rerun that the last interaction started has finished."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")


def _move(page, reason: str) -> None:
    """On the Registry page: roll back to v1 with ``reason``, preview, confirm."""
    page.get_by_text("Roll back", exact=True).click()
    _settle(page)
    page.get_by_label("Target version").click()
    page.get_by_role("option", name="v1").click()
    _settle(page)
    reason_box = page.get_by_label("Reason (required", exact=False)
    reason_box.fill(reason)
    reason_box.press("Control+Enter")
    _settle(page)
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("Slack will say:").wait_for()
    _settle(page)
    page.get_by_role("button", name="Confirm: roll back to v1").click()


def test_pages_render_and_only_an_operator_rolls_back(dashboard, trained, browser, model_name, postgres_url):
    registry, _env = trained
    shots = _artifacts()

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
    anonymous.get_by_text("needs an operator login").wait_for()
    anonymous.screenshot(path=str(shots / "registry-refused.png"), full_page=True)
    assert registry.alias_version(model_name, "champion") == 2
    with session_scope(postgres_url) as session:
        refused = session.execute(select(AccessLog.actor, AccessLog.action, AccessLog.allowed)
                                  .where(AccessLog.channel == "dashboard")).all()
    assert refused == [("dashboard:anonymous", "rollback", False)]

    # an operator logs in in the sidebar and rolls back; MLflow, the audit trail and the page change
    operator = _open(browser, dashboard)
    operator.get_by_label("Your name").fill("alice")
    operator.get_by_label("Operator token").fill(TOKEN)
    operator.get_by_role("button", name="Log in").click()
    operator.get_by_text("Operator: alice").wait_for()
    _settle(operator)
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
