"""A daemon thread that calls ``refresh()`` now and every ``poll_seconds`` until stopped: what the
API's readers of the store (model signals, the watchdog's heartbeat, the load-failure alert) share,
so that neither a request nor a scrape ever waits for the store."""

from __future__ import annotations

import threading


class Poller:
    """Subclasses set ``poll_seconds`` and implement ``refresh`` (which must not raise)."""

    poll_seconds: float
    thread_name = "vigil-poller"
    refresh_at_start = True  # False: the first refresh runs in the thread (start() never waits on it)

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self.refresh_at_start:
            self.refresh()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        if not self.refresh_at_start:
            self.refresh()
        while not self._stop.wait(self.poll_seconds):
            self.refresh()
