"""Watchdog test fixtures: versions trained once, copied per test; traffic written into the tables.

Versions are trained once per session with ``monitoring.training.trainer.train`` and copied (MLflow
``copy_model_version``) under a fresh model name per test. Traffic is simulated by writing
prediction and feedback rows straight into the tables, with the versions' real predictions.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from monitoring.registry.mlflow_registry import Registry
from monitoring.registry.promotion import promote
from monitoring.settings import Settings
from monitoring.store import history
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.migrations import upgrade
from monitoring.store.tables import (
    Alert,
    Feedback,
    ModelControl,
    Prediction,
    RegistryEvent,
    VersionHealth,
)
from monitoring.training import datasets
from monitoring.training.trainer import train
from monitoring.watchdog.evaluation import SETTLE, evaluate_and_act
from tests.runtimes import runtime_for


@pytest.fixture(scope="session")
def trained(mlflow_store: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int | str]:
    """good (accuracy ~0.81), bad (trained on corrupted labels: ~0.56 on real traffic), other good."""
    root = tmp_path_factory.mktemp("watchdog-train")
    settings = _settings(f"sqlite:///{root / 'train.db'}", mlflow_store, root)
    upgrade(settings.database_url)
    registry = Registry(settings)
    base = f"watchdog-base-{uuid.uuid4().hex[:6]}"
    versions = {"base": base}
    for kind, dataset, seed in [("good", datasets.generate(3000, 0), 0),
                                ("bad", datasets.bad_training_set(3000, 0), 0),
                                ("other", datasets.generate(3000, 1), 1)]:
        result = train(dataset, registry=registry, store_url=settings.database_url, model_name=base,
                       actor="test", promote=True, seed=seed)
        versions[kind] = result.version
    return versions


def _settings(url: str, mlflow_store: str, root: Path, **overrides) -> Settings:
    return Settings(database_url=url, mlflow_tracking_uri=mlflow_store, var_dir=root,
                    mlflow_artifact_root=str(Path(mlflow_store[len("sqlite:///"):]).parent / "artifacts"),
                    **overrides)


class World:
    """One model under watch: its versions, its traffic, and a clock that only moves forward."""

    def __init__(self, url: str, settings: Settings, registry: Registry, trained: dict, name: str):
        self.url, self.settings, self.registry, self.trained, self.name = url, settings, registry, trained, name
        self.clock = utcnow()
        self.models: dict[int, object] = {}

    def add(self, kind: str, *, promote_it: bool = True, health: str | None = None) -> int:
        source = self.registry.get_version(self.trained["base"], self.trained[kind])
        copied = self.registry.client.copy_model_version(
            f"models:/{self.trained['base']}/{self.trained[kind]}", self.name)
        version = int(copied.version)
        with session_scope(self.url) as session:
            history.upsert_version(session, model_name=self.name, version=version,
                                      eval_metrics={k: v for k, v in source.metrics.items()
                                                    if k in ("accuracy", "f1", "roc_auc")})
            if health:
                history.set_health(session, model_name=self.name, version=version, state=health,
                                      evidence={"accuracy": source.metrics["accuracy"], "labels": 500})
        if promote_it:
            promote(runtime_for(self.url, self.registry), model_name=self.name, version=version, actor="test",
                    reason=f"test: {kind}")
            self.clock = max(self.clock, utcnow())
        return version

    def serve(self, version: int, n: int, *, seed: int, scenario: str = "healthy", labelled: bool = True,
              latency_ms: float = 20.0, per_second: float = 20.0, start: datetime | None = None,
              role: str = "champion") -> list[str]:
        """``n`` predictions of ``version`` (and their labels a second later), from the clock on;
        their ids. ``role``: who answered (the champion, or a canary's challenger)."""
        model = self.models.setdefault(version, self.registry.load_version(self.name, version).native)
        data = datasets.generate(n, seed, scenario)
        predicted = model.predict(data.X())
        start = start or max(self.clock, utcnow())
        predictions, feedback = [], []
        for i, (features, guess, truth) in enumerate(zip(data.X().to_dict("records"), predicted,
                                                         data.y(), strict=True)):
            at = start + timedelta(seconds=i / per_second)
            pid = str(uuid.uuid4())
            predictions.append({"id": pid, "model_name": self.name, "model_version": version, "created_at": at,
                                "features": features, "prediction": str(guess), "score": None,
                                "latency_ms": latency_ms, "status": "ok", "error": None, "source": "simulate",
                                "role": role})
            if labelled:
                feedback.append({"prediction_id": pid, "model_name": self.name, "label": str(truth),
                                 "received_at": at + timedelta(seconds=1)})
        with session_scope(self.url) as session:
            session.execute(insert(Prediction), predictions)
            if feedback:
                session.execute(insert(Feedback), feedback)
        self.clock = start + timedelta(seconds=n / per_second + 1)
        return [row["id"] for row in predictions]

    def backdate_alias_moves(self, by: timedelta) -> None:
        """Make the promotions so far have happened ``by`` earlier (for runs on the real clock)."""
        with session_scope(self.url) as session:
            for event in session.scalars(select(RegistryEvent).where(RegistryEvent.model_name == self.name)):
                event.created_at -= by

    def evaluate(self, registry: Registry | None = None):
        now = self.clock + SETTLE + timedelta(seconds=1)
        self.clock = now
        return evaluate_and_act(runtime_for(self.url, registry or self.registry, self.settings), model_name=self.name,
                                now=now)

    def champion(self) -> int | None:
        return self.registry.alias_version(self.name, "champion")

    def count(self, table, *where) -> int:
        with session_scope(self.url) as session:
            return session.scalar(select(func.count()).select_from(table).where(*where))

    def health(self, version: int) -> str:
        with session_scope(self.url) as session:
            return session.get(VersionHealth, (self.name, version)).state

    def alerts(self) -> dict[str, Alert]:
        with session_scope(self.url) as session:
            return {a.alert_key: a for a in session.scalars(select(Alert).where(Alert.model_name == self.name))}

    def control(self) -> ModelControl:
        with session_scope(self.url) as session:
            return session.get(ModelControl, self.name)


@pytest.fixture
def world(store_url: str, mlflow_store: str, tmp_path: Path, trained, model_name: str) -> World:
    settings = _settings(store_url, mlflow_store, tmp_path)
    return World(store_url, settings, Registry(settings), trained, model_name)


@pytest.fixture
def sqlite_world(sqlite_url: str, mlflow_store: str, tmp_path: Path, trained, model_name: str) -> World:
    settings = _settings(sqlite_url, mlflow_store, tmp_path)
    return World(sqlite_url, settings, Registry(settings), trained, model_name)


