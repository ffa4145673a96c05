"""The `vigil` command as a user runs it: a real process, real stores, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitoring.store.engine import session_scope
from monitoring.store.tables import RegistryEvent

VIGIL = [sys.executable, "-c", "from cli.main import main; main()"]


@pytest.fixture
def run(settings, tmp_path):
    env = {**os.environ, "VIGIL_DATABASE_URL": settings.database_url,
           "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
           "VIGIL_MLFLOW_ARTIFACT_ROOT": str(settings.artifact_root),
           "VIGIL_VAR_DIR": str(settings.var_dir)}

    def _run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*VIGIL, *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=240, check=False)

    return _run


def _event_count(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(RegistryEvent))


@pytest.mark.slow
def test_train_promote_rollback_round_trip(run, settings, model_name) -> None:
    assert run("db", "upgrade").returncode == 0
    first = run("train", "--rows", "800", "--model-name", model_name)
    assert first.returncode == 0, first.stderr
    assert f"{model_name} version 1" in first.stdout and "now @champion" in first.stdout
    assert "fitting on 600 rows" in first.stderr  # progress is shown

    second = run("train", "--rows", "800", "--seed", "5", "--model-name", model_name, "--promote")
    assert second.returncode == 0, second.stderr
    back = run("rollback", "--reason", "drill", "--model-name", model_name)
    assert back.returncode == 0, back.stderr
    assert "rolled back from version 2 to 1" in back.stdout
    listing = run("versions", "--model-name", model_name)
    assert "@champion" in listing.stdout.splitlines()[0]


@pytest.mark.parametrize(("args", "message"), [
    (("train", "--data", "nowhere.csv", "--target", "y"), "no such CSV file: nowhere.csv"),
    (("train", "--data", "loans.csv", "--target", "missing"), "no target column 'missing'"),
    (("train", "--data", "garbage.csv", "--target", "default"), "not a readable CSV"),
    (("train", "--data", "loans.csv"), "--target is required"),
    (("rollback", "--reason", "x"), "no former champion"),
    (("promote", "7", "--reason", "x"), "has no version 7"),
])
def test_bad_input_exits_non_zero_with_a_clear_message(settings, tmp_path, monkeypatch, args, message):
    from click.testing import CliRunner

    from cli.main import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "loans.csv").write_text("income,default\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    (tmp_path / "garbage.csv").write_bytes(b"\xff\xfe\x00garbage" * 100)
    result = CliRunner().invoke(main, [*args, "--model-name", "never-made"])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert _event_count(settings.database_url) == 0  # nothing half-written
    assert not Path(tmp_path / "mlruns").exists()


def test_dashboard_command_starts_the_streamlit_dashboard(run, tmp_path) -> None:
    """``vigil dashboard`` finds the dashboard by module name and serves it until stopped."""
    from tests.net import free_port, wait_until_healthy

    port = free_port()
    process = subprocess.Popen([*VIGIL, "dashboard", "--port", str(port)], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/_stcore/health", what="vigil dashboard",
                           timeout=90, alive=lambda: process.poll() is None)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert f"dashboard on http://127.0.0.1:{port}" in stderr


def test_gradio_command_on_a_taken_port_says_so(run) -> None:
    """``vigil gradio`` runs the page as its own module; a port in use is a one-line error, exit 2."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("gradio", "--port", str(port), "--api-url", "http://127.0.0.1:9")
    assert result.returncode == 2, result.stderr
    assert "error: the Gradio page cannot listen on 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr
