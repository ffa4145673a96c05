"""The model signals the API shows on /metrics, re-read from the store by a thread of its own.

``vigil_model_metric`` (the newest window's value of each metric: quality, latency percentiles,
error rate, drift share ...) with ``vigil_model_metric_samples`` (its labelled or scored count)
and ``vigil_model_metric_window_end_seconds`` per model, version and metric, and
``vigil_model_open_alerts`` per model. A scrape reads only the copy in memory; the store is read
every ``poll_seconds`` (a short cache, so scrapes stay cheap whatever their rate).
"""

from __future__ import annotations

import logging

from monitoring.serving.poller import Poller
from monitoring.store.engine import utcnow
from monitoring.store.model_signals import Signals, read_signals

log = logging.getLogger(__name__)


class ModelSignals(Poller):
    """The newest signals, re-read every ``poll_seconds``; empty until the store answers."""

    thread_name = "vigil-model-signals"

    def __init__(self, url: str, poll_seconds: float = 15.0):
        super().__init__()
        self.url = url
        self.poll_seconds = poll_seconds
        self.current = Signals([], {})
        self.last_error: str | None = None

    def refresh(self) -> None:
        try:
            self.current = read_signals(self.url, now=utcnow())
        except Exception as error:  # noqa: BLE001 - the store is down: keep the last signals read
            if self.last_error is None:
                log.warning("cannot read the model signals: %s", error)
            self.last_error = f"{type(error).__name__}: {error}".splitlines()[0]
            return
        self.last_error = None
