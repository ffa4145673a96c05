"""The registry is the truth: compare the champion alias in MLflow with Vigil's history, and
record and announce any difference.

An alias moved outside Vigil (MLflow's UI, ``set_registered_model_alias`` in a team's script),
deleted there, or moved by a Vigil process that died between moving it and committing its
history, all look the same from here: MLflow says one version, the newest event in Vigil's
history another. ``reconcile`` records that difference as an ``outside_move`` event by
"mlflow (outside Vigil)" with the versions on both sides, and enqueues its Slack message in the
same transaction. It never moves the alias back and never guesses who moved it. From then on
the history agrees with MLflow, so one difference is recorded and announced once; the new
champion's tenure starts at that event and the watchdog guards it like a Vigil promotion.

The slow call (MLflow) is made without the per-model lock. The lock is taken only to record a
difference, and only after checking that Vigil's history did not change meanwhile (a promotion
in flight would otherwise be mistaken for an outside move); if it did, the comparison is left to
the next cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitoring.events import AliasMoved
from monitoring.runtime import Runtime
from monitoring.store import history, outbox
from monitoring.store.engine import lock_model, session_scope, utcnow

KIND = "outside_move"


@dataclass(frozen=True)
class Reconciled:
    """What MLflow says the champion is, and what was recorded about it (if anything)."""

    model_name: str
    champion: int | None  # the version MLflow's alias points at (None: no alias)
    agrees: bool  # Vigil's history said the same before this check
    recorded_from: int | None = None  # the version history said, when a difference was recorded
    settled: bool = True  # False: history changed during the check; compare again next cycle

    @property
    def note(self) -> str | None:
        if not self.settled:
            return "the alias moved in Vigil during the check; compared again next cycle"
        if self.agrees:
            return None
        return (f"@champion is version {self.champion} in MLflow, Vigil's history said "
                f"{_version(self.recorded_from)}: recorded as a move outside Vigil")


def reconcile(runtime: Runtime, model_name: str, *, now: datetime | None = None) -> Reconciled:
    """Compare MLflow's champion alias with Vigil's history; record and announce a difference.

    Raises RegistryError when MLflow cannot be read (an outage is not a difference).
    """
    url, alias = runtime.store_url, runtime.settings.champion_alias
    with session_scope(url) as session:
        before = history.last_alias_event(session, model_name, alias)
        seen = (before.id, before.to_version) if before is not None else (None, None)
    champion = runtime.registry.alias_version(model_name, alias)
    if seen[1] == champion:
        return Reconciled(model_name, champion, agrees=True)
    with session_scope(url) as session:
        lock_model(session, model_name)
        last = history.last_alias_event(session, model_name, alias)
        if (last.id if last is not None else None) != seen[0]:
            return Reconciled(model_name, champion, agrees=False, settled=False)
        record_difference(session, runtime, model_name, recorded=seen[1], actual=champion,
                          now=now or utcnow())
    return Reconciled(model_name, champion, agrees=False, recorded_from=seen[1])


def record_difference(session, runtime: Runtime, model_name: str, *, recorded: int | None,
                      actual: int | None, now: datetime) -> None:
    """The ``outside_move`` event and its Slack message, in the caller's locked transaction."""
    alias = runtime.settings.champion_alias
    reason = (f"MLflow's @{alias} is {_version(actual)}, Vigil's history said "
              f"{_version(recorded)}: moved outside Vigil")
    history.record_event(session, model_name=model_name, kind=KIND, actor=history.OUTSIDE_ACTOR,
                         reason=reason, alias=alias, from_version=recorded, to_version=actual,
                         evidence={"noticed_at": now.isoformat()}, now=now)
    if actual is not None:
        history.upsert_version(session, model_name=model_name, version=actual, now=now)
    guard = ("Vigil guards it like its own promotion: bake period, quality test, latency and "
             "error rules, rollback to the last healthy version.") if actual is not None else \
        "Nothing is served from the alias until it points at a version again."
    outbox.enqueue(
        session, model_name=model_name, kind=KIND, severity="warning",
        title=f"{model_name}: @{alias} moved outside Vigil to {_version(actual)}",
        facts={"model": model_name, "from version": recorded, "to version": actual,
               "by": history.OUTSIDE_ACTOR, "noticed at": f"{now:%Y-%m-%d %H:%M:%S} UTC"},
        text=f"{reason}. {guard}", link=runtime.settings.dashboard_url, now=now,
        event=AliasMoved(type=KIND, model=model_name, occurred_at=now,
                         actor=history.OUTSIDE_ACTOR, reason=reason, alias=alias,
                         from_version=recorded, to_version=actual).document(),
    )


def _version(version: int | None) -> str:
    return "no version" if version is None else f"version {version}"
