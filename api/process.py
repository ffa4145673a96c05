"""Everything one API process runs: the champion holder, the running release and its challenger
(with the shadow scorer's worker process), the scoring path (micro-batcher), the prediction log and the metrics.

Built and started by the app's lifespan (never at import), stopped at shutdown, when the log
hands what it holds to its shipper process, which makes a last attempt to write it. Each champion
swapped in from the registry is kept as a local copy under the var dir; when MLflow is down at
start, that copy is served until the registry answers (``monitoring.serving.local_copy``).
"""

from __future__ import annotations

from dataclasses import dataclass

from api.metrics import ApiMetrics
from monitoring.registry import releases
from monitoring.runtime import Runtime
from monitoring.serving import local_copy
from monitoring.serving.champion import Champion, ChampionHolder
from monitoring.serving.feedback_intake import LabelRules
from monitoring.serving.key_cache import KeyCache
from monitoring.serving.load_alert import LoadAlert
from monitoring.serving.model_signals import ModelSignals
from monitoring.serving.prediction_log import PredictionLog
from monitoring.serving.release_follower import CHALLENGER_ALIAS, ReleaseFollower
from monitoring.serving.scoring import ChampionScoring
from monitoring.serving.shadow import ShadowScorer
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
    keys: KeyCache  # the client keys, refreshed every VIGIL_KEY_REFRESH_SECONDS
    label_rules: LabelRules  # each loaded version's task and classes, for /feedback
    load_alert: LoadAlert  # a champion version that cannot be loaded, as a critical alert
    release: ReleaseFollower  # the model's running release and its challenger (@challenger)
    shadow: ShadowScorer  # a shadow release's challenger, scoring off the response path
    schema_checked: bool = False  # the store's schema was found at head (checked when reachable)

    @classmethod
    def build(cls, settings: Settings) -> ApiProcess:
        runtime = Runtime(settings)
        registry = runtime.registry
        rules = LabelRules()
        keep = local_copy.saver(settings.var_dir)

        def swapped(champion: Champion) -> None:
            rules.learn(champion)
            keep(champion)

        holder = ChampionHolder(registry, settings.model_name, settings.champion_alias,
                                settings.alias_poll_seconds,
                                fallback=local_copy.fallback(registry, settings.var_dir, settings.model_name),
                                on_swap=swapped)
        log = PredictionLog(settings.database_url, capacity=settings.log_buffer_rows,
                            flush_rows=settings.log_flush_rows,
                            flush_seconds=settings.log_flush_seconds) if settings.prediction_logging else None
        scoring = ChampionScoring(settings)

        def challenger_holder() -> ChampionHolder:
            return ChampionHolder(registry, settings.model_name, CHALLENGER_ALIAS, settings.alias_poll_seconds,
                                  on_swap=rules.learn)

        def abort_unloadable(running, failure) -> None:
            releases.abort_unloadable(runtime, model_name=running.model_name, release_id=running.id,
                                      version=failure.version, reason=failure.reason)

        release = ReleaseFollower(settings.database_url, settings.model_name, challenger_holder,
                                  settings.alias_poll_seconds, on_load_failure=abort_unloadable)
        shadow = ShadowScorer(settings, capacity=settings.shadow_queue)
        watchdog = WatchdogStatus(settings.database_url, settings.reliability.watchdog_stale_seconds)
        signals = ModelSignals(settings.database_url)
        metrics = ApiMetrics(holder, log, scoring.batcher, watchdog, signals, release, shadow)
        keys = KeyCache(settings.database_url, settings.key_refresh_seconds)
        return cls(runtime, holder, log, scoring, metrics, watchdog, signals, keys, rules,
                   LoadAlert(settings.database_url, holder), release, shadow)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def start(self) -> None:
        """Load the champion (when there is one) and start the alias poller and the log's shipper process."""
        if self.log is not None:
            self.log.start()
        self.keys.start()
        self.scoring.start()
        self.holder.start()
        self.shadow.start()
        self.release.start()
        self.load_alert.start()
        self.watchdog.start()
        self.signals.start()
        if self.metrics.shared_state is not None:
            self.metrics.shared_state.start()

    def stop(self) -> None:
        self.holder.stop()
        self.release.stop()
        self.shadow.stop()
        self.load_alert.stop()
        self.scoring.stop()
        self.watchdog.stop()
        self.signals.stop()
        self.keys.stop()
        if self.log is not None:
            self.log.stop()
        if self.metrics.shared_state is not None:
            self.metrics.shared_state.stop()
