"""The API's view of a model's running release: the release row, re-read from the store by a thread
of its own, and the challenger it names, loaded and hot-swapped by a second ``ChampionHolder`` that
follows the ``challenger`` alias.

A release that starts gets a challenger holder (its first load runs in this thread, never in a
request); one that ends (the store answers with no running release) has its holder stopped. The
store down: the last release read holds, and its challenger keeps its share. The store never read:
no release, so the champion answers everything. The challenger serves only while the version loaded
is the one the release names (the alias moved elsewhere, or not loadable yet: the champion answers).

A challenger that cannot be loaded (no signature, a missing dependency, a broken artifact) is told
to ``on_load_failure`` once per release: the API aborts the release with a critical alert
(``registry.releases.abort_unloadable``), since waiting would only keep the release open forever.
A failure to act (the store down) is tried again at the next tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from monitoring.serving.champion import Champion, ChampionHolder, LoadFailure
from monitoring.serving.poller import Poller
from monitoring.store.release_reads import RunningRelease, running_release

log = logging.getLogger(__name__)

CHALLENGER_ALIAS = "challenger"


class ReleaseFollower(Poller):
    """The running release of one model and its loaded challenger, re-read every ``poll_seconds``."""

    thread_name = "vigil-release-follower"

    def __init__(self, url: str, model_name: str, new_holder: Callable[[], ChampionHolder],
                 poll_seconds: float = 2.0,
                 on_load_failure: Callable[[RunningRelease, LoadFailure], None] | None = None):
        """``new_holder``: a (not started) holder of the challenger alias, made when a release starts;
        ``on_load_failure``: told once per release that its challenger cannot be loaded."""
        super().__init__()
        self._on_load_failure = on_load_failure
        self._load_failure_told: int | None = None  # the release whose failure was acted on
        self.url = url
        self.model_name = model_name
        self.poll_seconds = poll_seconds
        self._new_holder = new_holder
        self._release: RunningRelease | None = None
        self.holder: ChampionHolder | None = None
        self.last_error: str | None = None

    @property
    def release(self) -> RunningRelease | None:
        return self._release

    def challenger(self, release: RunningRelease | None) -> Champion | None:
        """The loaded challenger of ``release`` (read once per request), or None."""
        holder = self.holder
        loaded = holder.current if holder is not None and release is not None else None
        if loaded is None or loaded.version != release.challenger_version:
            return None
        return loaded

    def refresh(self) -> None:
        try:
            found = running_release(self.url, self.model_name)
        except Exception as error:  # noqa: BLE001 - the store is down: keep the last release read
            if self.last_error is None:
                log.warning("cannot read the running release of %s: %s", self.model_name, error)
            self.last_error = f"{type(error).__name__}: {error}".splitlines()[0]
            return
        self.last_error = None
        if found is None:
            if self._release is not None:
                log.info("%s: release %s ended; the champion answers everything", self.model_name,
                         self._release.id)
            self._release = None
            self._stop_holder()
            return
        if self.holder is None:
            log.info("%s: %s release %s of version %s at share %g; loading @%s", self.model_name,
                     found.mode, found.id, found.challenger_version, found.share, CHALLENGER_ALIAS)
            holder = self._new_holder()
            holder.start()
            self.holder = holder
        elif self.holder.stats.alias_version != found.challenger_version:
            self.holder.poll_soon()  # a new release of another version: follow the alias now
        self._release = found
        self._tell_load_failure(found)

    def _tell_load_failure(self, release: RunningRelease) -> None:
        failure = self.holder.load_failure if self.holder is not None else None
        if (failure is None or failure.version != release.challenger_version
                or self._on_load_failure is None or self._load_failure_told == release.id):
            return
        try:
            self._on_load_failure(release, failure)
        except Exception as error:  # noqa: BLE001 - the store is down: act at the next tick
            log.warning("%s: cannot act on the challenger's load failure yet: %s", self.model_name, error)
            return
        self._load_failure_told = release.id

    def stop(self) -> None:
        super().stop()
        self._stop_holder()

    def _stop_holder(self) -> None:
        holder, self.holder = self.holder, None
        if holder is not None:
            holder.stop()
