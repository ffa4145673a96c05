"""The API's copy of the client keys, so checking ``X-Vigil-Key`` costs a dict lookup and a hash.

A thread reads every key (revoked ones too: their refusal says so) from the store every
``refresh_seconds`` (``VIGIL_KEY_REFRESH_SECONDS``, 2 s by default), so a key made or revoked
elsewhere (``vigil keys``, the dashboard) takes effect in every API worker within that delay.
While the store is unreachable the last copy is kept; before a first copy was ever read, keyed
requests are answered 503.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from monitoring import client_keys
from monitoring.store.client_keys import KeyRow, list_keys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyRefused(Exception):
    """Why a request's key does not let it in: an HTTP status and a message for the client."""

    status: int
    message: str


class KeyCache:
    def __init__(self, url: str, refresh_seconds: float):
        self.url = url
        self.refresh_seconds = refresh_seconds
        self._by_prefix: dict[str, KeyRow] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> None:
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="vigil-key-cache", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def refresh(self) -> bool:
        """Read every key again; False (the last copy kept) when the store did not answer."""
        try:
            rows = list_keys(self.url)
        except Exception as error:  # noqa: BLE001 - keep serving with the keys last read
            if not self._failing:
                log.warning("client keys not refreshed (store unreachable: %s); using the last copy",
                            type(error).__name__)
            self._failing = True
            return False
        self._by_prefix = {row.prefix: row for row in rows}
        self._failing = False
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.refresh()

    def authorize(self, text: str | None, scope: str) -> client_keys.Grant:
        """The grant of a key holding ``scope``; KeyRefused (401 or 403, or 503) otherwise."""
        if not text:
            raise KeyRefused(401, f"send a client key in the {client_keys.HEADER} header "
                                  f"(an operator makes one with `vigil keys create NAME --scope {scope}`)")
        keys = self._by_prefix
        if keys is None:
            raise KeyRefused(503, "client keys cannot be checked yet: the store has not answered; retry")
        prefix = client_keys.prefix_of(text)
        row = keys.get(prefix) if prefix else None
        if row is None or not client_keys.matches(text, row.digest):
            raise KeyRefused(401, f"unknown client key (a key made in the last {self.refresh_seconds:g} s "
                                  f"may not be known yet)")
        if not row.active:
            raise KeyRefused(401, f"this client key (prefix {row.prefix}) was revoked at "
                                  f"{row.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
        if scope not in row.scopes:
            raise KeyRefused(403, f"the key of {row.name} (prefix {row.prefix}) lacks the scope "
                                  f"{scope!r} (it has: {', '.join(row.scopes)})")
        return row.grant()
