"""Attack: read the secrets off the machine. A running ``vigil serve`` given the operator token and a
PostgreSQL URL with a password in its environment shows neither in any process's argv nor in its log,
even after a wrong and a right token were tried; the demo prints the store's URL without password."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from monitoring.store.engine import without_password
from tests.api.conftest import make_settings, vigil_serve

pytestmark = pytest.mark.postgres

TOKEN = "argv-and-logs-token-Zx81qPw3vN"
PASSWORD = "pg-Pa55word-Kq7t"  # PostgreSQL here trusts loopback, so any password connects


def _all_argv() -> str:
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # the process ended meanwhile
            continue
    return "\n".join(lines)


def test_the_token_and_the_database_password_are_in_no_argv_and_no_log(postgres_url, mlflow_store, tmp_path):
    url = postgres_url.replace("postgres@", f"postgres:{PASSWORD}@", 1)
    assert PASSWORD in url
    settings = make_settings(url, mlflow_store, tmp_path / "var")
    log = tmp_path / "serve.log"
    with vigil_serve(settings, log, ready_path="/health", VIGIL_OPERATOR_TOKEN=TOKEN) as (server, base):
        body = {"version": 1, "reason": "x", "operator": "eve"}
        assert httpx.post(f"{base}/operator/promote", json=body,
                          headers={"Authorization": "Bearer wrong-guess"}).status_code == 403
        httpx.post(f"{base}/operator/promote", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        argv = _all_argv()
        assert str(server.pid) and "serve" in argv
        assert TOKEN not in argv and PASSWORD not in argv
    text = log.read_text()
    assert text, "the server logged nothing: the check below would prove nothing"
    assert TOKEN not in text and PASSWORD not in text


def test_the_demo_prints_the_store_url_without_its_password():
    shown = without_password(f"postgresql+psycopg2://vigil:{PASSWORD}@db:5432/vigil")
    assert PASSWORD not in shown and shown == "postgresql+psycopg2://vigil:***@db:5432/vigil"
