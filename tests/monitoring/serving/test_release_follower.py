"""The API's reader of the running release, against a real store: a release that starts gets a
challenger holder, one that ends has it stopped, a store that goes away keeps the last release, and
a store never read means no release (the champion answers everything)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import update

from monitoring.serving.release_follower import ReleaseFollower
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import Release

UNREACHABLE = "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere"


class _Holder:
    """Stands in for the challenger's ChampionHolder (tested in test_champion.py and tests/api)."""

    def __init__(self, version: int) -> None:
        self.current = SimpleNamespace(version=version)
        self.stats = SimpleNamespace(alias_version=version)
        self.load_failure = None
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def poll_soon(self) -> None:
        pass


def _insert(url: str, model: str, version: int, mode: str = "canary", share: float = 0.1) -> int:
    now = utcnow()
    with session_scope(url) as session:
        release = Release(model_name=model, mode=mode, challenger_version=version, champion_version=1,
                          share=share, state="running", started_at=now, started_by="test",
                          bake_until=now + timedelta(hours=1), updated_at=now)
        session.add(release)
        session.flush()
        return release.id


def test_a_release_is_followed_from_start_to_end_and_survives_a_store_outage(sqlite_url):
    holders: list[_Holder] = []

    def new_holder() -> _Holder:
        holders.append(_Holder(2))
        return holders[-1]

    follower = ReleaseFollower(sqlite_url, "m", new_holder)
    follower.refresh()
    assert follower.release is None and follower.challenger(follower.release) is None and not holders
    _insert(sqlite_url, "other-model", 5)
    release_id = _insert(sqlite_url, "m", 2, share=0.25)
    follower.refresh()
    assert (follower.release.id, follower.release.mode, follower.release.share) == (release_id, "canary", 0.25)
    assert holders[0].started and follower.challenger(follower.release).version == 2
    follower.url = UNREACHABLE
    follower.refresh()
    assert follower.release.id == release_id and follower.last_error and not holders[0].stopped
    follower.url = sqlite_url
    with session_scope(sqlite_url) as session:
        session.execute(update(Release).where(Release.id == release_id).values(state="aborted"))
    follower.refresh()
    assert follower.release is None and holders[0].stopped and follower.holder is None


def test_a_challenger_other_than_the_release_names_does_not_serve(sqlite_url):
    follower = ReleaseFollower(sqlite_url, "m", lambda: _Holder(3))
    _insert(sqlite_url, "m", 2)
    follower.refresh()
    assert follower.release is not None and follower.challenger(follower.release) is None


def test_a_store_never_read_means_no_release():
    follower = ReleaseFollower(UNREACHABLE, "m", lambda: _Holder(2))
    follower.refresh()
    assert follower.release is None and follower.last_error


def test_a_challenger_that_cannot_be_loaded_is_told_once_per_release_and_again_after_a_failed_try(sqlite_url):
    from monitoring.serving.champion import LoadFailure

    now = utcnow()
    unloadable = _Holder(1)
    unloadable.load_failure = LoadFailure(2, "no signature", now, now)
    told: list[tuple[int, int]] = []
    outcomes = iter([RuntimeError("store down"), None, None])

    def on_failure(release, failure) -> None:
        told.append((release.id, failure.version))
        if (error := next(outcomes)) is not None:
            raise error

    follower = ReleaseFollower(sqlite_url, "m", lambda: unloadable, on_load_failure=on_failure)
    release_id = _insert(sqlite_url, "m", 2)
    follower.refresh()  # the action fails: tried again at the next tick
    follower.refresh()
    follower.refresh()
    assert told == [(release_id, 2), (release_id, 2)]
    assert follower.challenger(follower.release) is None  # the champion answers meanwhile
