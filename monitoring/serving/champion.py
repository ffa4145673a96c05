"""The champion being served: loaded from ``models:/NAME@champion`` and hot-swapped when the alias moves.

``ChampionHolder.current`` is one immutable ``Champion`` (model, version, input schema). A request
reads it once and uses that object throughout, so its answer and its log rows carry the version
that really produced them. A background thread polls the alias; when it moves, the new version is
loaded in that thread and swapped in with one reference assignment: requests never wait for a
load, and a version that fails to load leaves the old one serving. The version it replaced stays
loaded, so a rollback to it (the common case) swaps back at the next poll, without a reload.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitoring.registry.mlflow_registry import Registry, RegistryError, VersionInfo
from monitoring.serving.fast_pipeline import LinearScorer, agrees, compile_pipeline, sample_rows
from monitoring.serving.input_schema import InputSchema
from monitoring.store.engine import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Champion:
    """One loaded version: everything a request needs, never changed after loading."""

    info: VersionInfo
    model: Any
    schema: InputSchema
    scorer: LinearScorer | None  # the verified fast path, or None (scikit-learn scores)
    loaded_at: datetime = field(default_factory=utcnow)

    @property
    def model_name(self) -> str:
        return self.info.model_name

    @property
    def version(self) -> int:
        return self.info.version

    @property
    def is_classifier(self) -> bool:
        return hasattr(self.model, "predict_proba")

    def predict(self, rows: list[dict[str, Any]]) -> tuple[list[Any], list[float | None]]:
        """Predictions and scores (positive-class probability, regression output) of checked rows."""
        if self.scorer is not None:
            return self.scorer.score(rows)
        import pandas as pd

        from monitoring.training.modeling import positive_score

        frame = pd.DataFrame.from_records(rows, columns=self.schema.names)
        labels = self.model.predict(frame).tolist()
        if not self.is_classifier:
            return labels, [float(v) for v in labels]
        score = positive_score(self.model, frame)
        return labels, [float(s) for s in score.tolist()] if score is not None else [None] * len(labels)


def load_champion(registry: Registry, model_name: str, version: int) -> Champion:
    """Load a version, read its input schema and compile (and check) its fast path."""
    info = registry.get_version(model_name, version)
    columns = registry.input_columns(model_name, version)
    if not columns:
        raise RegistryError(f"{model_name} version {version} has no input signature; "
                            f"Vigil cannot validate requests for it")
    schema = InputSchema.from_signature(columns)
    model = registry.load_model(model_name, version)
    scorer = compile_pipeline(model)
    if scorer is not None and not agrees(scorer, model, sample_rows(scorer), schema.names):
        log.warning("%s version %s: fast path disagrees with scikit-learn; scoring with scikit-learn",
                    model_name, version)
        scorer = None
    return Champion(info=info, model=model, schema=schema, scorer=scorer)


@dataclass
class HolderStats:
    alias_version: int | None = None  # where the alias pointed at the last successful poll
    last_poll_at: datetime | None = None
    last_error: str | None = None
    swaps: int = 0
    load_errors: int = 0
    poll_errors: int = 0
    registry_reachable: bool = True  # False while MLflow does not answer (serving goes on)


class ChampionHolder:
    """Keeps the champion of one model loaded and follows its alias."""

    def __init__(
        self,
        registry: Registry,
        model_name: str,
        alias: str,
        poll_seconds: float,
        loader: Callable[[Registry, str, int], Champion] = load_champion,
    ):
        self.registry = registry
        self.model_name = model_name
        self.alias = alias
        self.poll_seconds = poll_seconds
        self._loader = loader
        self._current: Champion | None = None
        self._previous: Champion | None = None  # kept loaded for an immediate swap back
        self.stats = HolderStats()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed_version: int | None = None

    @property
    def current(self) -> Champion | None:
        return self._current

    def start(self) -> None:
        """Load the champion now (if the alias points anywhere) and start following the alias."""
        self.refresh()
        self._thread = threading.Thread(target=self._follow, name="vigil-champion-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def poll_soon(self) -> None:
        """Check the alias now instead of at the next tick (after a promotion made here)."""
        self._wake.set()

    def refresh(self) -> Champion | None:
        """One poll: read the alias, load and swap in its version if it changed."""
        try:
            version = self.registry.alias_version(self.model_name, self.alias)
        except Exception as error:  # noqa: BLE001 - a registry outage must not stop serving
            self.stats.poll_errors += 1
            self.stats.registry_reachable = False  # not "the alias was removed": no answer
            self.stats.last_error = f"cannot read @{self.alias}: {error}"
            log.warning("%s: %s", self.model_name, self.stats.last_error)
            return self._current
        self.stats.alias_version = version
        self.stats.last_poll_at = utcnow()
        self.stats.registry_reachable = True
        current = self._current
        if version is None or (current is not None and current.version == version):
            return current
        try:
            previous = self._previous
            if previous is not None and previous.version == version:
                loaded = previous
            else:
                loaded = self._loader(self.registry, self.model_name, version)
        except Exception as error:  # noqa: BLE001 - keep serving the version we have
            self.stats.load_errors += 1
            self.stats.last_error = f"cannot load version {version}: {error}"
            if self._failed_version != version:
                log.error("%s: %s; still serving version %s", self.model_name, self.stats.last_error,
                          current.version if current else None)
            self._failed_version = version
            return current
        self._current = loaded  # the swap: one reference assignment
        self._previous = current
        self._failed_version = None
        self.stats.swaps += 1
        self.stats.last_error = None
        log.info("%s: now serving version %s (was %s)", self.model_name, version,
                 current.version if current else None)
        return loaded

    def _follow(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if not self._stop.is_set():
                self.refresh()
