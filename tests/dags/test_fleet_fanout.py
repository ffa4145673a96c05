"""The fleet fan-out: the monitoring DAG maps one task per model, so one model's
failure fails its own mapped task (and the run) while the other models are still computed.

Real Airflow (``dag.test()``), Vigil's store on the real PostgreSQL, a real MLflow store, three
models with traffic. The failure is planted in one model's computation: everything else is real.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from monitoring.registry.mlflow_registry import Registry
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import MetricWindow, VersionHealth
from tests.dags.test_dags_run import _dag, vigil  # noqa: F401 - the `vigil` fixture
from tests.monitoring.watchdog.conftest import World, trained  # noqa: F401 - the `trained` fixture

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def fleet(vigil, trained, model_name):  # noqa: F811 - imported fixtures
    """Three models, each with a healthy champion that served a window that has closed."""
    minutes = vigil.window_minutes
    now = utcnow()
    window_end = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % minutes + minutes)
    worlds = {}
    for suffix in ("a", "b", "broken"):
        world = World(vigil.database_url, vigil, Registry(vigil), trained, f"{model_name}-{suffix}")
        version = world.add("good", health="healthy")
        world.serve(version, 60, seed=3, start=window_end - timedelta(minutes=minutes) + timedelta(seconds=5))
        worlds[suffix] = world
    return worlds, window_end


def _mapped_states(run, task_id: str, models: list[str]) -> dict[str, str]:
    """Each model's mapped task state (map index i is the i-th model listed)."""
    return {models[ti.map_index]: str(ti.state) for ti in run.get_task_instances() if ti.task_id == task_id}


def _fail_for(monkeypatch, module: str, function: str, broken: str, argument: str) -> None:
    import importlib

    target = importlib.import_module(module)
    real = getattr(target, function)

    def planted(*args, **kwargs):
        if kwargs.get(argument, args[1] if len(args) > 1 else None) == broken:
            raise RuntimeError(f"planted failure for {broken}")
        return real(*args, **kwargs)

    monkeypatch.setattr(target, function, planted)


def _retrying_at_once(dag):
    """The DAG with its retries kept but their delay removed: dag.test() sleeps through each one."""
    for task in dag.tasks:
        task.retry_delay = timedelta(0)
    return dag


def _metric_models(url: str) -> set[str]:
    with session_scope(url) as session:
        return set(session.scalars(select(MetricWindow.model_name).distinct()))


def test_monitoring_fans_out_and_one_models_failure_spares_the_others(fleet, vigil, monkeypatch):  # noqa: F811
    worlds, window_end = fleet
    names = {suffix: world.name for suffix, world in worlds.items()}
    _fail_for(monkeypatch, "monitoring.metrics.window_pipeline", "compute_windows", names["broken"], "model_name")

    run = _retrying_at_once(_dag("vigil_monitoring")).test(logical_date=window_end)

    with session_scope(vigil.database_url) as session:
        models = list(session.scalars(select(VersionHealth.model_name).distinct().order_by(VersionHealth.model_name)))
    assert str(run.state) == "failed"  # the run says one model failed
    assert _mapped_states(run, "compute_windows", models) == {
        names["a"]: "success", names["b"]: "success", names["broken"]: "failed"}
    assert _metric_models(vigil.database_url) == {names["a"], names["b"]}

    # idempotent on the data interval: a re-run of the same interval (now healthy) adds only the third
    monkeypatch.undo()
    with session_scope(vigil.database_url) as session:
        before = sorted(session.execute(select(MetricWindow.model_name, MetricWindow.metric,
                                               MetricWindow.value)).all())
    again = _dag("vigil_monitoring").test(logical_date=window_end)
    assert str(again.state) == "success"
    with session_scope(vigil.database_url) as session:
        after = sorted(session.execute(select(MetricWindow.model_name, MetricWindow.metric,
                                              MetricWindow.value)).all())
    assert [row for row in after if row[0] != names["broken"]] == before
    assert _metric_models(vigil.database_url) == set(names.values())
