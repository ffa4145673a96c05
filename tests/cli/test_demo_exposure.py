"""Attack: reach the demo from another machine, or read its store password from the process list.
Every service the demo starts listens on 127.0.0.1 (Airflow's API server too) and no argv holds the
store's URI; the dashboard is said to be open."""

from __future__ import annotations

from pathlib import Path

from cli.demo import DemoOptions, services
from monitoring.settings import Settings

PASSWORD = "demo-Pa55word-Qz9"


def _listed(tmp_path: Path):
    url = f"postgresql+psycopg2://vigil:{PASSWORD}@127.0.0.1:5432/vigil"
    settings = Settings().model_copy(update={"database_url": url, "mlflow_tracking_uri": url,
                                             "var_dir": tmp_path})
    return services(settings, DemoOptions(), Path(__file__).resolve().parents[2])


def test_every_demo_service_is_on_loopback_and_no_argv_holds_the_password(tmp_path):
    listed = _listed(tmp_path)
    airflow = next(s for s in listed if s.name == "airflow")
    assert airflow.env["AIRFLOW__API__HOST"] == "127.0.0.1"
    for service in listed:
        assert PASSWORD not in " ".join(service.command), service.name
        assert "0.0.0.0" not in service.command, service.name
        for host_option in ("--host", "--address"):
            if host_option in service.command:
                assert service.command[service.command.index(host_option) + 1] == "127.0.0.1", service.name
        if service.url:
            assert service.url.startswith("http://127.0.0.1:"), service.name


def test_the_demo_dashboard_is_open_and_says_so(tmp_path):
    dashboard = next(s for s in _listed(tmp_path) if s.name == "dashboard")
    assert dashboard.env["VIGIL_DASHBOARD_ACCESS"] == "open"
