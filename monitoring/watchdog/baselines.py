"""A champion's baseline when Vigil holds no registration metrics or healthy record for it.

Every champion is judged against something (``sequential_test.champion_baseline``): its own
registration metrics and healthy record first; failing those, a production record read here
from the prediction log and the feedback:

- the version it replaced (the ``from_version`` of the alias move that began its tenure): that
  version's accuracy on its newest labelled predictions made before the move. A version marked
  bad is no baseline.
- a champion that replaced nothing (adopted by ``vigil adopt``, or put on an alias that pointed
  at nothing): its own accuracy on its labelled predictions before its tenure began (the traffic
  it answered before it was adopted), or else on its first ``OWN_START_LABELS`` labelled
  predictions: it is then held to the level it started at.

A regressor's record (its labels are continuous numbers) also carries the tolerance its misses
are counted with (``sequential_test.outcome_record``). A record counts once it is complete
(``min_labels`` labels for a record before the move, ``OWN_START_LABELS`` for the start of a
tenure); it is then kept in the detector state for the rest of the tenure, so it is read once,
not on every evaluation. Runs in the caller's session.
"""

from __future__ import annotations

from typing import Any

from monitoring.settings import WatchdogPolicy
from monitoring.store import watchdog_evidence as evidence
from monitoring.store.engine import Session
from monitoring.store.tables import RegistryEvent
from monitoring.watchdog.sequential_test import outcome_record

REPLACED_RECORD_LABELS = 2_000  # newest labelled predictions of a record before the move
OWN_START_LABELS = 200  # labels that set the level of a champion with nothing else to go by


def fallback_record(session: Session, state: dict[str, Any], name: str, champion: int,
                    tenure: RegistryEvent | None, health: dict[int, Any],
                    policy: WatchdogPolicy) -> dict[str, Any] | None:
    """The production record the champion is held to (kept in ``state``), or None yet."""
    cached = state.get("baseline_record")
    if cached:
        return cached
    record = production_record(session, name, champion, tenure, health, policy)
    if record is not None:
        state["baseline_record"] = record
    return record


def production_record(session: Session, name: str, champion: int, tenure: RegistryEvent | None,
                      health: dict[int, Any], policy: WatchdogPolicy) -> dict[str, Any] | None:
    """The complete record a champion without registration metrics is judged against, or None."""
    if tenure is None:
        return None
    replaced = tenure.from_version
    if replaced is not None and replaced != champion:
        row = health.get(replaced)
        if row is not None and row.state == "bad":
            return None
        outcomes = evidence.labelled_outcomes(session, name, replaced, before=tenure.created_at,
                                              limit=REPLACED_RECORD_LABELS)
        return _record(outcomes, replaced, f"production record of version {replaced}, which it "
                                           "replaced", complete=len(outcomes) >= policy.min_labels)
    before = evidence.labelled_outcomes(session, name, champion, before=tenure.created_at,
                                        limit=REPLACED_RECORD_LABELS)
    if len(before) >= policy.min_labels:
        return _record(before, champion, "its own production record before its tenure began",
                       complete=True)
    start = evidence.labelled_outcomes(session, name, champion, after=tenure.created_at,
                                       limit=OWN_START_LABELS)
    return _record(start, champion, f"its own first {OWN_START_LABELS} labelled predictions",
                   complete=len(start) >= OWN_START_LABELS)


def _record(outcomes: list[tuple[str | None, str]], version: int, source: str, *,
            complete: bool) -> dict[str, Any] | None:
    record = outcome_record(outcomes) if complete else None
    return None if record is None else {**record, "version": version, "source": source}
