"""Every DAG file imports cleanly, does no heavy work at import, and declares retries, schedules,
catchup off and a per-task failure callback that tells the on-call."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.dags.conftest import DAGS, airflow_env

PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
def names(callbacks):  # a mapped task keeps a single callback as given, not in a list
    callbacks = callbacks or []
    return [f.__name__ for f in (callbacks if isinstance(callbacks, list) else [callbacks])]
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "schedule": dag.timetable.expression,
        "catchup": dag.catchup,
        "interval": type(dag.timetable).__name__,
        "tasks": {t.task_id: {"retries": t.retries,
                              "on_failure": names(t.on_failure_callback),
                              "on_success": names(t.on_success_callback)}
                  for t in dag.tasks},
        "dag_failure_callback": bool(getattr(dag, "on_failure_callback", None)),
    }
heavy = sorted(m for m in ("pandas", "sklearn", "mlflow", "evidently", "scipy", "numpy") if m in sys.modules)
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": dags, "heavy": heavy}))
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-import")
    result = subprocess.run([sys.executable, "-c", PROBE, str(DAGS)], capture_output=True, text=True,
                            timeout=300, env={**os.environ, **airflow_env(home)}, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_every_dag_imports_without_errors_or_heavy_imports(probe):
    assert probe["errors"] == {}
    assert set(probe["dags"]) == {"vigil_training", "vigil_monitoring", "vigil_batch_scoring", "vigil_watchdog",
                                  "vigil_maintenance"}
    assert probe["heavy"] == []


@pytest.mark.slow
def test_schedules_retries_and_failure_callbacks(probe):
    dags = probe["dags"]
    assert {d: dags[d]["schedule"] for d in dags} == {
        "vigil_training": "0 0 * * *", "vigil_monitoring": "*/5 * * * *",
        "vigil_batch_scoring": "0 * * * *", "vigil_watchdog": "* * * * *", "vigil_maintenance": "30 2 * * *"}
    assert {d["interval"] for d in dags.values()} == {"CronDataIntervalTimetable"}
    assert all(d["catchup"] is False and not d["dag_failure_callback"] for d in dags.values())
    assert set(dags["vigil_training"]["tasks"]) == {"ingest", "validate", "train", "evaluate", "register",
                                                    "promote"}
    for dag_id, dag in dags.items():
        for task_id, task in dag["tasks"].items():
            assert task["on_failure"] == ["task_failed"], (dag_id, task_id)
            assert task["on_success"] == ["task_succeeded"], (dag_id, task_id)
            expected = 0 if (dag_id, task_id) == ("vigil_training", "validate") else 1
            assert task["retries"] >= expected and (task["retries"] == 0) == (expected == 0), (dag_id, task_id)


def test_dag_files_import_only_airflow_the_standard_library_and_the_core():
    """The adapter contract for DAG files (import-linter sees packages only; dags/ is a folder)."""
    import ast

    allowed = {"airflow", "datetime", "monitoring", "__future__"}
    for path in DAGS.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
