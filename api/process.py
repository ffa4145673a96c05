"""Everything one API process runs: the champion holder, the prediction log and the metrics.

Built and started by the app's lifespan (never at import), stopped at shutdown, when the log
hands what it holds to its shipper process, which makes a last attempt to write it.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.metrics import ApiMetrics
from monitoring.runtime import Runtime
from monitoring.serving.champion import ChampionHolder
from monitoring.serving.prediction_log import PredictionLog
from monitoring.serving.watchdog_status import WatchdogStatus
from monitoring.settings import Settings


@dataclass
class ApiProcess:
    runtime: Runtime
    holder: ChampionHolder
    log: PredictionLog | None  # None when VIGIL_PREDICTION_LOGGING is off
    metrics: ApiMetrics
    watchdog: WatchdogStatus  # the newest watchdog heartbeat, for readiness and /metrics

    @classmethod
    def build(cls, settings: Settings) -> ApiProcess:
        runtime = Runtime(settings)
        holder = ChampionHolder(runtime.registry, settings.model_name, settings.champion_alias,
                                settings.alias_poll_seconds)
        log = PredictionLog(settings.database_url, capacity=settings.log_buffer_rows,
                            flush_rows=settings.log_flush_rows,
                            flush_seconds=settings.log_flush_seconds) if settings.prediction_logging else None
        watchdog = WatchdogStatus(settings.database_url, settings.reliability.watchdog_stale_seconds)
        return cls(runtime, holder, log, ApiMetrics(holder, log, watchdog), watchdog)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def start(self) -> None:
        """Load the champion (when there is one) and start the alias poller and the log's shipper process."""
        if self.log is not None:
            self.log.start()
        self.holder.start()
        self.watchdog.start()
        if self.metrics.shared_state is not None:
            self.metrics.shared_state.start()

    def stop(self) -> None:
        self.holder.stop()
        self.watchdog.stop()
        if self.log is not None:
            self.log.stop()
        if self.metrics.shared_state is not None:
            self.metrics.shared_state.stop()
