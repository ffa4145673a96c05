"""What the API knows about the watchdog: the newest heartbeat, read in a thread of its own.

The API is a path to the on-call that does not depend on the watchdog: its readiness answer and
its ``vigil_watchdog_seconds_since_last_evaluation`` gauge say when no watchdog run completed for
``VIGIL_WATCHDOG_STALE_SECONDS``. The store is read every few seconds by a background thread, so
neither a scrape nor a readiness probe waits for the store (a scrape runs on the event loop);
the age is computed at the moment it is asked for, so it keeps growing while the watchdog is silent.
"""

from __future__ import annotations

import logging

from monitoring.serving.poller import Poller
from monitoring.store.engine import utcnow
from monitoring.store.heartbeats import Beat, newest_beat
from monitoring.watchdog.heartbeat import Freshness, freshness

log = logging.getLogger(__name__)


class WatchdogStatus(Poller):
    """The newest watchdog beat, re-read every ``poll_seconds``."""

    thread_name = "vigil-watchdog-status"

    def __init__(self, url: str, threshold_seconds: float, poll_seconds: float = 2.0):
        super().__init__()
        self.url = url
        self.threshold_seconds = threshold_seconds
        self.poll_seconds = poll_seconds
        self._beat: Beat | None = None
        self._read = False  # the store answered at least once
        self.last_error: str | None = None

    def refresh(self) -> None:
        try:
            self._beat = newest_beat(self.url)
        except Exception as error:  # noqa: BLE001 - the store is down: keep the last beat read
            if self.last_error is None:
                log.warning("cannot read the watchdog's heartbeat: %s", error)
            self.last_error = f"{type(error).__name__}: {error}".splitlines()[0]
            return
        self._read, self.last_error = True, None

    def freshness(self) -> Freshness | None:
        """The newest beat judged now; None while the store has never answered."""
        if not self._read:
            return None
        return freshness(self._beat, utcnow(), self.threshold_seconds)
