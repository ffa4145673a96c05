"""Vigil as it runs for real, for the fault runs: ``vigil serve`` and ``vigil watch`` as processes on
one store, a champion trained into a real MLflow server, a fake Slack over real HTTP, and what to
measure (the store's rows, the outbox against what Slack received, readiness and /metrics).
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from monitoring.alerts.messages import render
from monitoring.store.engine import session_scope
from monitoring.store.tables import Alert, ModelControl, OutboxMessage, Prediction
from tests.fakes.fake_slack import FakeSlack
from tests.faults.harness import BIN, Service, answers, wait_for
from tests.net import free_port

# Shorter than the defaults so that a run takes minutes; the table states them
SETTINGS = {
    "VIGIL_MLFLOW_TIMEOUT_SECONDS": "2", "VIGIL_MLFLOW_MAX_RETRIES": "0",
    "VIGIL_MLFLOW_UNREACHABLE_GRACE_SECONDS": "10", "VIGIL_WATCHDOG_STALE_SECONDS": "10",
    "VIGIL_ALIAS_POLL_SECONDS": "1", "VIGIL_LOG_FLUSH_SECONDS": "0.2",
    "VIGIL_OPEN_ACCESS": "true",  # the fault table is about outages, not keys
}
WATCH_INTERVAL = "1"


@dataclass
class Vigil:
    """The API and the watchdog of one store, with the environment they were given."""

    store_url: str
    mlflow_url: str
    model_name: str
    root: Path
    slack: FakeSlack
    api: Service | None = None
    watchdog: Service | None = None
    api_url: str = ""

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **SETTINGS, "VIGIL_DATABASE_URL": self.store_url,
                "MLFLOW_TRACKING_URI": self.mlflow_url, "VIGIL_MODEL_NAME": self.model_name,
                "VIGIL_VAR_DIR": str(self.root / "var"), "VIGIL_SLACK_BOT_TOKEN": self.slack.token,
                "VIGIL_SLACK_BASE_URL": self.slack.base_url, "MLFLOW_DISABLE_TELEMETRY": "true"}

    def start(self) -> None:
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self.api = Service("api", [str(BIN / "vigil"), "serve", "--port", str(port)],
                           self.root / "api.log", self.env)
        self.watchdog = Service("watchdog", [str(BIN / "vigil"), "watch", "--interval", WATCH_INTERVAL],
                                self.root / "watchdog.log", self.env)
        self.api.start()
        self.watchdog.start()
        wait_for(lambda: answers(f"{self.api_url}/health/ready") or _exited(self.api),
                 what="vigil serve", timeout=300, every=0.5)
        wait_for(lambda: self.control().last_evaluated_at is not None or _exited(self.watchdog),
                 what="the first evaluation of vigil watch", timeout=300, every=0.5)

    def stop(self) -> None:
        for service in (self.watchdog, self.api):
            if service is not None:
                service.stop()

    # -- what is measured
    def control(self) -> ModelControl:
        with session_scope(self.store_url) as session:
            return session.get(ModelControl, self.model_name) or ModelControl(model_name=self.model_name)

    def alert(self, key: str) -> Alert | None:
        with session_scope(self.store_url) as session:
            return session.scalars(select(Alert).where(Alert.alert_key == key)).one_or_none()

    def logged(self, ids: list[str]) -> int:
        with session_scope(self.store_url) as session:
            return sum(session.scalar(select(func.count()).select_from(Prediction)
                                      .where(Prediction.id.in_(ids[i:i + 500])))
                       for i in range(0, len(ids), 500))

    def outbox_size(self) -> int:
        with session_scope(self.store_url) as session:
            return session.scalar(select(func.coalesce(func.max(OutboxMessage.id), 0)))

    def slack_accounting(self, after_outbox_id: int, after_posted: int) -> tuple[int, int, int]:
        """(messages written, lost, duplicated) since the marks: each outbox row's text against
        the texts Slack received."""
        with session_scope(self.store_url) as session:
            rows = session.scalars(select(OutboxMessage).where(OutboxMessage.id > after_outbox_id)).all()
            expected = Counter(render(r.payload, model_name=r.model_name, kind=r.kind).text for r in rows)
        got = Counter(m["text"] for m in self.slack.posted()[after_posted:])
        lost = sum((expected - got).values())
        duplicated = sum((got - expected).values())
        return sum(expected.values()), lost, duplicated

    def ready(self) -> dict:
        return httpx.get(f"{self.api_url}/health/ready", timeout=10).json()

    def gauge(self, name: str) -> float:
        text = httpx.get(f"{self.api_url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    return sample.value
        raise KeyError(name)

    def posted_since(self, index: int, needle: str) -> bool:
        return any(needle in m["text"] for m in self.slack.posted()[index:])


def _exited(service: Service) -> bool:
    if not service.alive():
        raise RuntimeError(f"{service.name} exited:\n{service.tail()}")
    return False


def train_champion(mlflow_url: str, store_url: str, root: Path) -> str:
    """A first version trained into the MLflow server and promoted (recorded in the store)."""
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.settings import ReliabilityPolicy, Settings
    from monitoring.store.migrations import upgrade
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    name = f"fault-{uuid.uuid4().hex[:6]}"
    upgrade(store_url)
    settings = Settings(database_url=store_url, mlflow_tracking_uri=mlflow_url, var_dir=root / "var",
                        reliability=ReliabilityPolicy(mlflow_timeout_seconds=120, mlflow_max_retries=3))
    train(datasets.generate(400, 0), registry=Registry(settings), store_url=store_url, model_name=name,
          actor="fault-run", promote=True, seed=0)
    return name
