"""A champion version the API cannot load is a critical alert, not a log line.

When ``@champion`` points at a version that fails to load (no signature, a missing dependency, a
broken artifact), the previous version keeps serving and ``ChampionHolder.load_failure`` says why.
``LoadAlert`` turns that into the alert ``serving:NAME:load`` (kind ``load_failure``, critical),
which reaches Slack and every other route through the outbox and shows in the dashboard's banner;
it is resolved once this process serves the version the alias points at.

It runs in a thread of its own: the store is written there, never on the request path nor in the
alias poller. While the store is down the alert is tried again at every tick, so it is raised once
the store answers. Several API processes raise the same key, which is one alert (raising a key that
is firing only updates it).
"""

from __future__ import annotations

import logging

from monitoring.serving.champion import ChampionHolder, LoadFailure
from monitoring.serving.poller import Poller
from monitoring.store import alerts
from monitoring.store.engine import session_scope

log = logging.getLogger(__name__)
KIND = "load_failure"


def alert_key(model_name: str) -> str:
    return f"serving:{model_name}:load"


class LoadAlert(Poller):
    """Keeps the store's load-failure alert in step with the holder, every ``poll_seconds``."""

    thread_name = "vigil-load-alert"
    refresh_at_start = False  # it writes to the store: never at the API's start (the store may be down)

    def __init__(self, url: str, holder: ChampionHolder, poll_seconds: float = 2.0):
        super().__init__()
        self.url = url
        self.holder = holder
        self.poll_seconds = poll_seconds
        self._raised: int | None = None  # the version this process's alert is about
        self._cleared = False  # this process found nothing to report and resolved any leftover
        self.last_error: str | None = None

    def refresh(self) -> None:
        """Raise the alert for a new failure, resolve it once the alias's version is served."""
        failure = self.holder.load_failure
        try:
            if failure is not None and failure.version != self._raised:
                self._raise(failure)
            elif failure is None and self._serves_the_alias() and (self._raised is not None
                                                                  or not self._cleared):
                self._resolve()
        except Exception as error:  # noqa: BLE001 - the store is down: try again at the next tick
            if self.last_error is None:
                log.warning("cannot record the load failure alert yet: %s", error)
            self.last_error = f"{type(error).__name__}: {error}".splitlines()[0]
            return
        self.last_error = None

    def _serves_the_alias(self) -> bool:
        champion = self.holder.current
        return (champion is not None and not champion.from_local_copy
                and self.holder.stats.registry_reachable
                and champion.version == self.holder.stats.alias_version)

    def _raise(self, failure: LoadFailure) -> None:
        name, alias = self.holder.model_name, self.holder.alias
        champion = self.holder.current
        serving = champion.version if champion is not None else None
        with session_scope(self.url) as session:
            alerts.raise_alert(
                session, key=alert_key(name), model_name=name, kind=KIND, severity="critical",
                title=f"{name}: @{alias} points at version {failure.version}, which the API cannot load",
                facts={"model": name, "version": failure.version,
                       "serving": serving if serving is not None else "nothing",
                       "since": f"{failure.since:%Y-%m-%d %H:%M:%S} UTC"},
                text=failure.describe(alias, serving), now=failure.since)
        self._raised, self._cleared = failure.version, False
        log.error("%s: load failure alert raised for version %s", name, failure.version)

    def _resolve(self) -> None:
        name, champion = self.holder.model_name, self.holder.current
        with session_scope(self.url) as session:
            resolved = alerts.resolve_alert(
                session, key=alert_key(name),
                facts={"model": name, "serving": champion.version},
                text=f"The API serves version {champion.version}, the version @{self.holder.alias} points at.")
        if resolved is not None:
            log.info("%s: load failure alert resolved (serving version %s)", name, champion.version)
        self._raised, self._cleared = None, True
