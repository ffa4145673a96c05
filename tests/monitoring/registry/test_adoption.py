"""`vigil adopt`: a model registered by a team's own code, onboarded through the real command.

Real MLflow store (SQLite in a temp folder), real Vigil store (SQLite and PostgreSQL), the
`vigil` command as a process. Every refusal exits 2 with a message and writes nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from monitoring.metrics.references import load_reference
from monitoring.store import history
from monitoring.store.engine import session_scope
from monitoring.store.tables import (
    AccessLog,
    OutboxMessage,
    ReferenceData,
    RegistryEvent,
    VersionHealth,
)
from monitoring.training import datasets
from tests.runtimes import runtime_for
from tests.team_models import register_team_version

VIGIL = [sys.executable, "-c", "from cli.main import main; main()"]


def vigil_on(url: str, mlflow_store: str, tmp_path: Path):
    """The `vigil` command on the store at ``url`` (a process of its own, as a user runs it)."""
    env = {**os.environ, "VIGIL_DATABASE_URL": url, "MLFLOW_TRACKING_URI": mlflow_store,
           "VIGIL_MLFLOW_ARTIFACT_ROOT": str(Path(mlflow_store[len("sqlite:///"):]).parent / "artifacts"),
           "VIGIL_VAR_DIR": str(tmp_path / "var")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*VIGIL, *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=240, check=False)

    return run


@pytest.fixture
def vigil(store_url, mlflow_store, tmp_path):
    return vigil_on(store_url, mlflow_store, tmp_path)


@pytest.fixture
def vigil_sqlite(sqlite_url, mlflow_store, tmp_path):
    return vigil_on(sqlite_url, mlflow_store, tmp_path)


def _runtime(store_url, mlflow_store, tmp_path):
    from monitoring.settings import Settings

    settings = Settings(database_url=store_url, mlflow_tracking_uri=mlflow_store, var_dir=tmp_path / "var",
                        mlflow_artifact_root=str(Path(mlflow_store[len("sqlite:///"):]).parent / "artifacts"))
    return runtime_for(store_url, settings=settings)


def _rows(url: str, table, name: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(table).where(table.model_name == name))


def test_adopt_takes_the_logged_dataset_and_the_runs_accuracy(vigil, store_url, mlflow_store, tmp_path,
                                                               model_name):
    version = register_team_version(mlflow_store, model_name, dataset_file=tmp_path / "loans.parquet")

    adopted = vigil("adopt", model_name)

    assert adopted.returncode == 0, adopted.stderr
    assert f"@champion is version {version}" in adopted.stdout
    assert "dataset logged with run" in adopted.stdout and "registration accuracy" in adopted.stdout
    with session_scope(store_url) as session:
        [event] = session.scalars(select(RegistryEvent).where(RegistryEvent.model_name == model_name))
        assert (event.kind, event.alias, event.from_version, event.to_version) == ("adopt", "champion", None, version)
        assert event.actor.startswith("cli:")
        health = session.get(VersionHealth, (model_name, version))
        assert health.state == "unknown" and 0.6 < health.eval_metrics["accuracy"] < 0.95
        reference = session.get(ReferenceData, (model_name, version))
        assert reference.uri.startswith("runs:/") and reference.rows == 3000
        [message] = session.scalars(select(OutboxMessage).where(OutboxMessage.model_name == model_name))
        assert message.kind == "adopt" and f"version {version}" in message.payload["title"]
    loaded = load_reference(_runtime(store_url, mlflow_store, tmp_path), model_name, version)
    assert sorted(loaded.frame.columns) == sorted(datasets.NUMERIC + datasets.CATEGORICAL)  # no target
    assert sorted(loaded.categorical) == sorted(datasets.CATEGORICAL)

    again = vigil("adopt", model_name)
    assert again.returncode == 2 and "already watched by Vigil" in again.stderr


def test_adopt_with_a_reference_file_and_without_a_baseline_yet(vigil_sqlite, sqlite_url, mlflow_store, tmp_path,
                                                                model_name):
    version = register_team_version(mlflow_store, model_name, log_accuracy=False)
    reference = tmp_path / "reference.csv"
    datasets.generate(500, 9).frame.to_csv(reference, index=False)  # with the target column: left out

    adopted = vigil_sqlite("adopt", model_name, "--reference", str(reference))

    assert adopted.returncode == 0, adopted.stderr
    assert f"file {reference}" in adopted.stdout and "(500 rows)" in adopted.stdout
    assert "first 200 labelled predictions" in adopted.stdout
    with session_scope(sqlite_url) as session:
        assert session.get(ReferenceData, (model_name, version)).rows == 500
        assert session.get(VersionHealth, (model_name, version)).eval_metrics == {}
        assert session.scalar(select(func.count()).select_from(AccessLog)
                              .where(AccessLog.action == "adopt", AccessLog.model_name == model_name)) == 1


def test_adopt_without_any_reference_waits_for_the_first_healthy_window(vigil_sqlite, sqlite_url, mlflow_store,
                                                                        model_name):
    version = register_team_version(mlflow_store, model_name)

    adopted = vigil_sqlite("adopt", model_name)

    assert adopted.returncode == 0, adopted.stderr
    assert "pending: first healthy production window" in adopted.stdout
    with session_scope(sqlite_url) as session:
        assert history.reference_for(session, model_name, version).uri == history.PENDING_REFERENCE


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(("setup", "make_args", "message"), [
    ("none", lambda tmp, name: ("adopt", "no-such-model-xyz"), "no registered model named 'no-such-model-xyz'"),
    ("no_alias", lambda tmp, name: ("adopt", name), "has no @champion alias"),
    ("champion", lambda tmp, name: ("adopt", name, "--reference", str(_write(tmp / "bad.parquet", "not parquet"))),
     "cannot read reference file"),
    ("champion", lambda tmp, name: ("adopt", name, "--reference", str(_write(tmp / "ref.txt", "a,b\n1,2\n"))),
     "must be a .csv or .parquet file"),
    ("champion", lambda tmp, name: ("adopt", name, "--reference", str(_write(tmp / "few.csv", "income,age\n1,2\n"))),
     "lacks the signature's input column(s)"),
    ("champion", lambda tmp, name: ("adopt", name, "--reference", str(tmp / "typed.csv")),
     "column 'income' must be numeric"),
])
def test_adopt_refuses_clearly_and_writes_nothing(vigil_sqlite, sqlite_url, mlflow_store, tmp_path, model_name,
                                                  setup, make_args, message):
    if setup != "none":
        register_team_version(mlflow_store, model_name, champion=setup == "champion")
    frame = datasets.generate_features(20, 1).assign(income="lots")
    frame.to_csv(tmp_path / "typed.csv", index=False)

    refused = vigil_sqlite(*make_args(tmp_path, model_name))

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert message in refused.stderr
    for table in (RegistryEvent, VersionHealth, ReferenceData, OutboxMessage):
        assert _rows(sqlite_url, table, model_name) == 0


def test_the_logged_dataset_that_does_not_fit_leaves_the_reference_pending(sqlite_url, mlflow_store, tmp_path,
                                                                           model_name):
    from monitoring.registry.adoption import adopt

    version = register_team_version(mlflow_store, model_name, dataset_file=tmp_path / "loans.parquet")
    pd.DataFrame({"other": [1, 2, 3]}).to_parquet(tmp_path / "loans.parquet")  # the file changed since

    adoption = adopt(_runtime(sqlite_url, mlflow_store, tmp_path), model_name=model_name, actor="test")

    assert adoption.version == version and adoption.reference.startswith("pending")
    assert "lacks the signature's input column(s)" in adoption.reference
