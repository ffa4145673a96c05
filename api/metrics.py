"""Prometheus metrics of the API, and the ASGI middleware that counts every request (and refuses
bodies larger than ``max_body_bytes`` before they are read).

Counters and the latency histogram are updated per request; the model version, the prediction
log's queue and drop counts, whether MLflow answers, the age of the newest watchdog run
(``vigil_watchdog_seconds_since_last_evaluation``, from a heartbeat read by a thread, never the
store at scrape time), the model signals (``vigil_model_metric`` and friends, likewise read by a
thread: ``monitoring.serving.model_signals``) and the process's CPU and memory are read when ``/metrics`` is scraped.
The running release's challenger and share, and the shadow queue's counts (requests dropped when
it is full) are read at scrape time too.
``vigil_process_cpu_percent`` and ``vigil_process_memory_mb`` are the names the
monitoring pipeline reads (see monitoring/process_metrics.py).

One worker: a registry of its own. Several workers (``vigil serve --workers N`` sets
``PROMETHEUS_MULTIPROC_DIR``): a scrape reaches one worker but must show all of them, so the
values go through prometheus_client's multiprocess files: counters and the histogram are summed
over the workers (the dead ones' too), and every second each worker copies its read-at-scrape
values there (``SharedState``): the version, CPU and memory per live worker (a ``pid`` label),
queue depth summed, store reachability the minimum.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import orjson
import psutil
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.exceptions import HTTPException

from monitoring.serving.micro_batch import MicroBatcher
from monitoring.serving.model_signals import ModelSignals
from monitoring.serving.prediction_log import PredictionLog
from monitoring.serving.served_model import ServedModel
from monitoring.serving.shadow import ShadowScorer
from monitoring.serving.watchdog_status import WatchdogStatus

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
OTHER_PATH = "other"  # label for paths that match no route, so fuzzing cannot explode label counts
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class ApiMetrics:
    def __init__(self, models: list[ServedModel], prediction_log: PredictionLog | None,
                 batcher: MicroBatcher | None = None, watchdog: WatchdogStatus | None = None,
                 signals: ModelSignals | None = None, shadow: ShadowScorer | None = None):
        several_workers = bool(os.environ.get(MULTIPROCESS_VARIABLE))
        self.registry = CollectorRegistry()
        own = None if several_workers else self.registry  # several workers: the values live in shared files
        self.requests = Counter("vigil_http_requests", "HTTP requests answered",
                                ["method", "path", "status"], registry=own)
        self.latency = Histogram("vigil_http_request_duration_seconds", "time to answer an HTTP request",
                                 ["path"], buckets=LATENCY_BUCKETS, registry=own)
        self.errors = Counter("vigil_http_errors", "HTTP answers with an error status (client: 4xx, server: 5xx)",
                              ["path", "kind"], registry=own)
        self.rows = Counter("vigil_predictions", "rows scored, by the version that scored them",
                            ["model_name", "model_version"], registry=own)
        self.model_failures = Counter("vigil_prediction_failures", "requests the model failed to score",
                                      ["model_name", "model_version"], registry=own)
        state = _StateCollector(models, prediction_log, batcher, watchdog, signals, shadow)
        if several_workers:
            multiprocess.MultiProcessCollector(self.registry)
            self.shared_state: SharedState | None = SharedState(state)
        else:
            self.registry.register(state)
            self.shared_state = None
        self._children: dict[tuple, Any] = {}

    def scored(self, model_name: str, version: int, rows: int) -> None:
        key = (model_name, version)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.rows.labels(model_name, str(version))
        child.inc(rows)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector:
    """Values read at scrape time from the served models, the prediction log and the process."""

    def __init__(self, models: list[ServedModel], prediction_log: PredictionLog | None,
                 batcher: MicroBatcher | None, watchdog: WatchdogStatus | None = None,
                 signals: ModelSignals | None = None, shadow: ShadowScorer | None = None):
        self.models = models
        self.shadow = shadow
        self.signals = signals
        self.log = prediction_log
        self.batcher = batcher
        self.watchdog = watchdog
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first reading only starts the measurement

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[Any]:
        yield from self._model_state()
        yield from self._release_state()
        batches = self.batcher.stats if self.batcher else None
        yield _counter("vigil_micro_batches", "model calls made by the micro-batcher",
                       batches.batches if batches else 0)
        yield _counter("vigil_micro_batched_requests", "requests scored by the micro-batcher",
                       batches.requests if batches else 0)
        stats = self.log.stats if self.log else None
        yield _gauge("vigil_prediction_log_queue_rows", "prediction rows handed to the log, not yet written",
                     stats.queued if stats else 0)
        yield _counter("vigil_prediction_log_dropped_rows",
                       "prediction rows dropped (buffers full, the shipper died, or unwritten at exit)",
                       stats.dropped if stats else 0)
        yield _counter("vigil_prediction_log_written_rows", "prediction rows written to the store",
                       stats.written if stats else 0)
        yield _counter("vigil_prediction_log_write_errors", "failed batch writes (the rows stay buffered)",
                       stats.write_errors if stats else 0)
        yield _counter("vigil_prediction_log_shipper_restarts",
                       "times the log's shipper process died and was started again",
                       stats.shipper_restarts if stats else 0)
        yield _gauge("vigil_prediction_log_store_ok", "1 when the last write to the store succeeded",
                     1 if stats is None or stats.store_ok else 0)
        yield _gauge("vigil_prediction_logging_enabled", "1 when predictions are being logged", 1 if self.log else 0)
        yield _gauge("vigil_registry_reachable", "1 when MLflow answered the last alias poll (of every model)",
                     1 if all(served.holder.stats.registry_reachable for served in self.models) else 0)
        found = self.watchdog.freshness() if self.watchdog else None
        yield _gauge("vigil_watchdog_seconds_since_last_evaluation",
                     "seconds since the newest watchdog run ended (+Inf: none ever ran; NaN: the "
                     "store has not answered)", found.seconds_since if found else math.nan)
        if self.signals is not None:
            yield from _model_signals(self.signals)
        yield _gauge("vigil_process_cpu_percent", "CPU used by this API process since the last scrape (100 = one core)",
                     self.process.cpu_percent(None))
        yield _gauge("vigil_process_memory_mb", "resident memory of this API process, MB",
                     self.process.memory_info().rss / 1_048_576)

    def _model_state(self) -> Iterator[Any]:
        """Per served model: the champion's version, swaps, load errors and load failure."""
        families = {
            "version": GaugeMetricFamily("vigil_model_version", "version of the champion being served "
                                         "(0: none loaded)", labels=["model_name"]),
            "swaps": CounterMetricFamily("vigil_model_swaps", "champion versions swapped in",
                                         labels=["model_name"]),
            "load_errors": CounterMetricFamily("vigil_model_load_errors", "failed loads of a new champion "
                                               "version", labels=["model_name"]),
            "failed": GaugeMetricFamily("vigil_champion_load_failed", "1 while the alias points at a version "
                                        "that cannot be loaded (an older version is served)", labels=["model_name"]),
        }
        for served in self.models:
            holder, champion = served.holder, served.holder.current
            families["version"].add_metric([served.name], champion.version if champion else 0)
            families["swaps"].add_metric([served.name], holder.stats.swaps)
            families["load_errors"].add_metric([served.name], holder.stats.load_errors)
            families["failed"].add_metric([served.name], 1 if holder.load_failure else 0)
        yield from families.values()

    def _release_state(self) -> Iterator[Any]:
        version = GaugeMetricFamily("vigil_challenger_version", "version of the running release's "
                                    "challenger being served (0: no release, or not loaded yet)",
                                    labels=["model_name", "mode"])
        share = GaugeMetricFamily("vigil_release_share", "share of requests the running release's "
                                  "challenger answers (canary) or scores (shadow)", labels=["model_name", "mode"])
        for served in self.models:
            release = served.release.release
            if release is not None:
                challenger = served.release.challenger(release)
                version.add_metric([release.model_name, release.mode], challenger.version if challenger else 0)
                share.add_metric([release.model_name, release.mode], release.share)
        yield from (version, share)
        counts = self.shadow.counts if self.shadow else None
        yield _counter("vigil_shadow_requests", "requests handed to the shadow challenger",
                       counts.submitted if counts else 0)
        yield _counter("vigil_shadow_dropped_requests", "shadow requests dropped: the shadow queue was "
                       "full (VIGIL_SHADOW_QUEUE), never slowing the champion", counts.dropped if counts else 0)
        yield _counter("vigil_shadow_scored_rows", "rows the shadow challenger scored",
                       counts.scored if counts else 0)
        yield _counter("vigil_shadow_failures", "shadow requests the challenger refused or failed on",
                       counts.failed if counts else 0)
        yield _gauge("vigil_shadow_queue_requests", "shadow requests waiting for the challenger",
                     self.shadow.queued if self.shadow else 0)


class SharedState:
    """Several workers: this worker's read-at-scrape values copied every second into the shared files."""

    PUBLISH_SECONDS = 1.0
    GAUGE_MODES: ClassVar[dict[str, str]] = {  # the other gauges: summed over live workers
        "vigil_model_version": "liveall", "vigil_process_cpu_percent": "liveall",
        "vigil_challenger_version": "liveall", "vigil_release_share": "livemax",
        "vigil_champion_load_failed": "livemax",
        "vigil_process_memory_mb": "liveall", "vigil_prediction_log_store_ok": "livemin",
        "vigil_prediction_logging_enabled": "livemax",
        "vigil_registry_reachable": "livemin", "vigil_watchdog_seconds_since_last_evaluation": "livemax",
        # every worker reads the same store: one copy, not a sum
        "vigil_model_metric": "livemax", "vigil_model_metric_samples": "livemax",
        "vigil_model_metric_window_end_seconds": "livemax", "vigil_model_open_alerts": "livemax",
        "vigil_model_quality_test_breaching": "livemax", "vigil_model_quality_test_llr": "livemax",
        "vigil_model_quality_test_labels": "livemax",
        "vigil_model_seconds_since_last_evaluation": "livemax",
    }

    def __init__(self, state: _StateCollector):
        self.state = state
        self._metrics: dict[str, Any] = {}
        self._counted: dict[tuple, float] = {}  # counters: the value already added to the shared file
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self) -> None:
        for family in self.state.collect():
            for sample in family.samples:
                labels = tuple(sample.labels)
                metric = self._metrics.get(family.name)
                if metric is None:
                    if family.type == "counter":
                        metric = Counter(family.name, family.documentation, labels, registry=None)
                    else:
                        metric = Gauge(family.name, family.documentation, labels, registry=None,
                                       multiprocess_mode=self.GAUGE_MODES.get(family.name, "livesum"))
                    self._metrics[family.name] = metric
                child = metric.labels(*sample.labels.values()) if labels else metric
                if family.type == "counter":
                    key = (family.name, *sample.labels.values())
                    added = self._counted.get(key, 0.0)
                    if sample.value > added:
                        child.inc(sample.value - added)
                        self._counted[key] = sample.value
                else:
                    child.set(sample.value)

    def start(self) -> None:
        self.publish()
        self._thread = threading.Thread(target=self._run, name="vigil-metrics-publisher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.publish()  # the last counts (rows the log wrote at shutdown)
        multiprocess.mark_process_dead(os.getpid())  # this worker's live gauges leave the scrape

    def _run(self) -> None:
        while not self._stop.wait(self.PUBLISH_SECONDS):
            self.publish()


def _model_signals(signals: ModelSignals) -> Iterator[GaugeMetricFamily]:
    """The store's newest window per model, version and metric, and open alerts per model."""
    current = signals.current
    labels = ["model_name", "model_version", "metric"]
    value = GaugeMetricFamily("vigil_model_metric", "newest window's value of a model metric "
                              "(quality, latency_p95_ms, drift_share ...; NaN: not computable)",
                              labels=labels)
    samples = GaugeMetricFamily("vigil_model_metric_samples", "rows behind that value (labelled "
                                "predictions for a quality metric)", labels=labels)
    ended = GaugeMetricFamily("vigil_model_metric_window_end_seconds",
                              "Unix time the newest window of that metric ended", labels=labels)
    for signal in current.latest:
        key = [signal.model_name, str(signal.model_version), signal.metric]
        value.add_metric(key, math.nan if signal.value is None else signal.value)
        samples.add_metric(key, signal.sample_count)
        ended.add_metric(key, signal.window_end.timestamp())
    alerts = GaugeMetricFamily("vigil_model_open_alerts", "alerts firing for a model",
                               labels=["model_name"])
    for model_name, count in sorted(current.open_alerts.items()):
        alerts.add_metric([model_name], count)
    yield from (value, samples, ended, alerts)
    yield from _watched(current.watched)


def _watched(watched) -> Iterator[GaugeMetricFamily]:
    """Per model, the watchdog's quality test and the age of its last evaluation."""
    families = {
        "breaching": GaugeMetricFamily("vigil_model_quality_test_breaching", "1 while the "
                                       "quality test has tripped and not found the version healthy "
                                       "since", labels=["model_name"]),
        "llr": GaugeMetricFamily("vigil_model_quality_test_llr", "the running quality test's "
                                 "log-likelihood ratio (trips at its upper bound)",
                                 labels=["model_name"]),
        "labels": GaugeMetricFamily("vigil_model_quality_test_labels", "labels the running quality "
                                    "test has seen", labels=["model_name"]),
        "age": GaugeMetricFamily("vigil_model_seconds_since_last_evaluation", "seconds since the "
                                 "watchdog last evaluated the model (+Inf: never)",
                                 labels=["model_name"]),
    }
    now = time.time()
    for model in watched:
        families["breaching"].add_metric([model.model_name], 1 if model.test_breaching else 0)
        families["llr"].add_metric([model.model_name], model.test_llr)
        families["labels"].add_metric([model.model_name], model.test_labels)
        age = math.inf if model.last_evaluated_at is None else now - model.last_evaluated_at.timestamp()
        families["age"].add_metric([model.model_name], age)
    yield from families.values()


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


class RequestMetricsMiddleware:
    """Pure ASGI (cheaper than BaseHTTPMiddleware): counts, times and size-limits each request."""

    def __init__(self, app: Any, metrics: Callable[[], ApiMetrics | None], max_body_bytes: int):
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self._paths: frozenset[str] | None = None
        self._templates: tuple[tuple[str, str], ...] = ()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._paths is None:
            routes = [getattr(route, "path", "") for route in scope["app"].routes]
            self._paths = frozenset(routes)
            # a route with one trailing parameter (/predict/{model_name}): counted under its template
            self._templates = tuple((route[:route.index("{")], route) for route in routes
                                    if route.count("{") == 1 and route.endswith("}"))
        path = scope["path"] if scope["path"] in self._paths else self._template(scope["path"])
        started = time.perf_counter()
        status = 500

        async def send_counted(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                await _send_json(send_counted, 413, f"the body has {declared} bytes; at most "
                                 f"{self.max_body_bytes} are accepted (VIGIL_MAX_BODY_BYTES)")
            else:
                await self.app(scope, self._limited(receive), send_counted)
        finally:
            metrics = self.metrics()
            if metrics is not None:
                metrics.requests.labels(scope["method"], path, str(status)).inc()
                metrics.latency.labels(path).observe(time.perf_counter() - started)
                if status >= 400:
                    metrics.errors.labels(path, "server" if status >= 500 else "client").inc()

    def _template(self, path: str) -> str:
        for prefix, template in self._templates:
            if path.startswith(prefix) and len(path) > len(prefix) and "/" not in path[len(prefix):]:
                return template
        return OTHER_PATH

    def _limited(self, receive: Callable) -> Callable:
        received = 0
        limit = self.max_body_bytes

        async def receive_limited() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"the body is larger than {limit} bytes (VIGIL_MAX_BODY_BYTES)")
            return message

        return receive_limited


def _content_length(scope: dict) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_json(send: Callable, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
