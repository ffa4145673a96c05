"""Everything one API process runs: each served model (its champion holder, running release and
challenger: ``monitoring.serving.served_model``), the shadow scorer's worker process, the scoring
path (micro-batcher), the prediction log and the metrics.

Built and started by the app's lifespan (never at import), stopped at shutdown, when the log
hands what it holds to its shipper process, which makes a last attempt to write it. Each champion
swapped in from the registry is kept as a local copy under the var dir; when MLflow is down at
start, that copy is served until the registry answers (``monitoring.serving.local_copy``).
"""

from __future__ import annotations

from dataclasses import dataclass

from api.metrics import ApiMetrics
from monitoring.runtime import Runtime
from monitoring.serving.champion import Champion
from monitoring.serving.feedback_intake import LabelRules
from monitoring.serving.key_cache import KeyCache
from monitoring.serving.model_signals import ModelSignals
from monitoring.serving.prediction_log import PredictionLog
from monitoring.serving.scoring import ChampionScoring
from monitoring.serving.served_model import ServedModel
from monitoring.serving.shadow import ShadowScorer
from monitoring.serving.watchdog_status import WatchdogStatus
from monitoring.settings import Settings


@dataclass
class ApiProcess:
    runtime: Runtime
    models: dict[str, ServedModel]  # by name, the default model (VIGIL_MODEL_NAME) first
    log: PredictionLog | None  # None when VIGIL_PREDICTION_LOGGING is off
    scoring: ChampionScoring
    metrics: ApiMetrics
    watchdog: WatchdogStatus  # the newest watchdog heartbeat, for readiness and /metrics
    signals: ModelSignals  # the store's newest model metrics and open alerts, for /metrics
    keys: KeyCache  # the client keys, refreshed every VIGIL_KEY_REFRESH_SECONDS
    label_rules: LabelRules  # each loaded version's task and classes, for /feedback
    shadow: ShadowScorer  # a shadow release's challenger, scoring off the response path (every model's)
    schema_checked: bool = False  # the store's schema was found at head (checked when reachable)

    @classmethod
    def build(cls, settings: Settings) -> ApiProcess:
        runtime = Runtime(settings)
        rules = LabelRules()
        models = {name: ServedModel.build(runtime, name, rules) for name in settings.served_model_names}
        log = PredictionLog(settings.database_url, capacity=settings.log_buffer_rows,
                            flush_rows=settings.log_flush_rows,
                            flush_seconds=settings.log_flush_seconds) if settings.prediction_logging else None
        scoring = ChampionScoring(settings)
        shadow = ShadowScorer(settings, capacity=settings.shadow_queue)
        watchdog = WatchdogStatus(settings.database_url, settings.reliability.watchdog_stale_seconds)
        signals = ModelSignals(settings.database_url)
        metrics = ApiMetrics(list(models.values()), log, scoring.batcher, watchdog, signals, shadow)
        keys = KeyCache(settings.database_url, settings.key_refresh_seconds)
        return cls(runtime, models, log, scoring, metrics, watchdog, signals, keys, rules, shadow)

    @property
    def default(self) -> ServedModel:
        """The model ``/predict`` (without a name) and the operator endpoints act on by default."""
        return self.models[self.settings.model_name]

    def champion_of(self, model_name: str) -> Champion | None:
        """The champion served for ``model_name``, or None (not loaded, or not served here)."""
        served = self.models.get(model_name)
        return served.champion if served is not None else None

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def start(self) -> None:
        """Load each served model's champion (when it has one), start the alias pollers and the log's shipper."""
        if self.log is not None:
            self.log.start()
        self.keys.start()
        self.scoring.start()
        self.shadow.start()
        for served in self.models.values():
            served.start()
        self.watchdog.start()
        self.signals.start()
        if self.metrics.shared_state is not None:
            self.metrics.shared_state.start()

    def stop(self) -> None:
        for served in self.models.values():
            served.stop()
        self.shadow.stop()
        self.scoring.stop()
        self.watchdog.stop()
        self.signals.stop()
        self.keys.stop()
        if self.log is not None:
            self.log.stop()
        if self.metrics.shared_state is not None:
            self.metrics.shared_state.stop()
