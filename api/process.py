"""Everything one API process runs: the champion holder, the scoring path (micro-batcher), the
prediction log and the metrics.

Built and started by the app's lifespan (never at import), stopped at shutdown, when the log
hands what it holds to its shipper process, which makes a last attempt to write it. Each champion
swapped in from the registry is kept as a local copy under the var dir; when MLflow is down at
start, that copy is served until the registry answers (``monitoring.serving.local_copy``).
"""

from __future__ import annotations

from dataclasses import dataclass

from api.metrics import ApiMetrics
from monitoring.runtime import Runtime
from monitoring.serving import local_copy
from monitoring.serving.champion import ChampionHolder
from monitoring.serving.model_signals import ModelSignals
from monitoring.serving.prediction_log import PredictionLog
from monitoring.serving.scoring import ChampionScoring
from monitoring.serving.watchdog_status import WatchdogStatus
from monitoring.settings import Settings


@dataclass
class ApiProcess:
    runtime: Runtime
    holder: ChampionHolder
    log: PredictionLog | None  # None when VIGIL_PREDICTION_LOGGING is off
    scoring: ChampionScoring
    metrics: ApiMetrics
    watchdog: WatchdogStatus  # the newest watchdog heartbeat, for readiness and /metrics
    signals: ModelSignals  # the store's newest model metrics and open alerts, for /metrics
    schema_checked: bool = False  # the store's schema was found at head (checked when reachable)

    @classmethod
    def build(cls, settings: Settings) -> ApiProcess:
        runtime = Runtime(settings)
        registry = runtime.registry
        holder = ChampionHolder(registry, settings.model_name, settings.champion_alias,
                                settings.alias_poll_seconds,
                                fallback=local_copy.fallback(registry, settings.var_dir, settings.model_name),
                                on_swap=local_copy.saver(settings.var_dir))
        log = PredictionLog(settings.database_url, capacity=settings.log_buffer_rows,
                            flush_rows=settings.log_flush_rows,
                            flush_seconds=settings.log_flush_seconds) if settings.prediction_logging else None
        scoring = ChampionScoring(settings)
        watchdog = WatchdogStatus(settings.database_url, settings.reliability.watchdog_stale_seconds)
        signals = ModelSignals(settings.database_url)
        metrics = ApiMetrics(holder, log, scoring.batcher, watchdog, signals)
        return cls(runtime, holder, log, scoring, metrics, watchdog, signals)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def start(self) -> None:
        """Load the champion (when there is one) and start the alias poller and the log's shipper process."""
        if self.log is not None:
            self.log.start()
        self.scoring.start()
        self.holder.start()
        self.watchdog.start()
        self.signals.start()
        if self.metrics.shared_state is not None:
            self.metrics.shared_state.start()

    def stop(self) -> None:
        self.holder.stop()
        self.scoring.stop()
        self.watchdog.stop()
        self.signals.stop()
        if self.log is not None:
            self.log.stop()
        if self.metrics.shared_state is not None:
            self.metrics.shared_state.stop()
