"""Per-model watchdog policy: an operator's overrides of ``WatchdogPolicy`` fields, merged over the
environment's defaults (``VIGIL_MIN_LABELS``, ``VIGIL_COOLDOWN_MINUTES``, ...).

Only the fields set are stored (``model_policies``); every other field follows the environment,
so a changed default reaches each model that does not override it. ``effective`` is the policy
the watchdog judges a model by. A change (``vigil policy``, ``PUT /operator/policies/{model}``,
the dashboard's Policy page) is validated with the environment's own constraints and refused
whole when one value is bad. It is made under the model's lock (an evaluation sees the policy
before or after it, never half of it) and audited in the same transaction: an access-log row
saying who changed which field from which value to which, and a ``policy_set`` or
``policy_reset`` event in the outbox.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from monitoring.events import FieldChange, PolicyChanged
from monitoring.settings import Settings, WatchdogPolicy
from monitoring.store import history, outbox
from monitoring.store import model_policies as stored
from monitoring.store import watchdog_evidence as evidence
from monitoring.store.engine import Session, lock_model, session_scope, utcnow

FIELDS: tuple[str, ...] = tuple(WatchdogPolicy.model_fields)

log = logging.getLogger(__name__)


class PolicyError(ValueError):
    """A policy change refused whole: an unknown field or a value outside its bounds."""


class UnknownModel(PolicyError):
    """A change for a model Vigil does not know (a typo would otherwise be stored and never used)."""


def merged(defaults: WatchdogPolicy, overrides: Mapping[str, Any]) -> WatchdogPolicy:
    """``overrides`` over ``defaults``, checked with the constraints of the ``VIGIL_`` variables."""
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise PolicyError(f"no such policy field: {', '.join(unknown)} (the fields: {', '.join(FIELDS)})")
    flags = sorted(name for name, value in overrides.items() if isinstance(value, bool))
    if flags:  # pydantic would take true for 1
        raise PolicyError(f"{', '.join(flags)}: a number is needed, not true or false")
    try:
        policy = WatchdogPolicy.model_validate({**defaults.model_dump(), **overrides})
    except ValidationError as error:
        raise PolicyError("; ".join(f"{'.'.join(str(part) for part in problem['loc'])}={problem.get('input')!s}: "
                                    f"{problem['msg'].lower()}" for problem in error.errors())) from None
    endless = sorted(name for name in overrides if not math.isfinite(getattr(policy, name)))
    if endless:
        raise PolicyError(f"{', '.join(endless)}: a finite number is needed")
    return policy


def effective(session: Session, defaults: WatchdogPolicy, model_name: str) -> WatchdogPolicy:
    """The policy the watchdog applies to ``model_name``: its overrides over ``defaults``.

    Overrides stored by an older Vigil that no longer pass a tightened bound are logged and the
    defaults used: the model stays guarded.
    """
    return _applied(defaults, stored.overrides(session, model_name), model_name)


def _applied(defaults: WatchdogPolicy, overrides: Mapping[str, Any], model_name: str) -> WatchdogPolicy:
    if not overrides:
        return defaults
    try:
        return merged(defaults, overrides)
    except PolicyError as error:
        log.error("the policy overrides of %s are refused (%s): the defaults apply", model_name, error)
        return defaults


@dataclass(frozen=True)
class PolicyView:
    """One model's effective policy, which of its values are overrides, and who set them last."""

    model_name: str
    policy: WatchdogPolicy
    defaults: WatchdogPolicy
    overrides: dict[str, Any]
    updated_at: datetime | None = None
    updated_by: str | None = None

    def rows(self) -> list[tuple[str, Any, Any, bool]]:
        """(field, value used, environment's default, overridden) for every field."""
        return [(name, getattr(self.policy, name), getattr(self.defaults, name), name in self.overrides)
                for name in FIELDS]


def view(url: str, defaults: WatchdogPolicy, model_name: str, *, known_by: str | None = None) -> PolicyView:
    """``model_name``'s policy as the watchdog applies it now. With ``known_by`` (the champion
    alias), a model Vigil does not know is refused: a typed name, not a silent "the defaults"."""
    with session_scope(url) as session:
        row = stored.row(session, model_name)
        if known_by is not None and row is None:
            _refuse_unknown(session, model_name, known_by)
        return _view(defaults, model_name, row)


def _refuse_unknown(session: Session, model_name: str, alias: str) -> None:
    if model_name not in evidence.watched_model_names(session, alias):
        raise UnknownModel(f"Vigil knows no model {model_name!r}: train, adopt or promote it first")


def views(url: str, defaults: WatchdogPolicy, alias: str) -> list[PolicyView]:
    """The policy of every model Vigil knows, by name."""
    with session_scope(url) as session:
        rows = stored.rows(session)
        names = sorted(set(evidence.watched_model_names(session, alias)) | set(rows))
        return [_view(defaults, name, rows.get(name)) for name in names]


def _view(defaults: WatchdogPolicy, model_name: str, row) -> PolicyView:
    overrides = dict(row.overrides) if row else {}
    return PolicyView(model_name, _applied(defaults, overrides, model_name), defaults, overrides,
                      row.updated_at if row else None, row.updated_by if row else None)


@dataclass(frozen=True)
class Change:
    """One field changed: the value the watchdog used before and uses now, and whose each is."""

    field: str
    old: Any
    new: Any
    old_override: bool
    new_override: bool

    def __str__(self) -> str:
        def said(value: Any, override: bool) -> str:
            return f"{value:g}" if override else f"{value:g} (default)"

        return f"{self.field}: {said(self.old, self.old_override)} -> {said(self.new, self.new_override)}"


def set_fields(settings: Settings, model_name: str, values: Mapping[str, Any], *, actor: str,
               channel: str, reason: str = "") -> list[Change]:
    """Give ``model_name`` its own value for each field in ``values`` (the others are kept)."""
    if not values:
        raise PolicyError("name at least one field to set")
    merged(settings.watchdog, values)  # refused before any lock is taken
    return _change(settings, model_name, lambda before: {**before, **values}, "policy_set",
                   actor=actor, channel=channel, reason=reason)


def reset_fields(settings: Settings, model_name: str, fields: Iterable[str] = (), *, actor: str,
                 channel: str, reason: str = "") -> list[Change]:
    """Give ``fields`` (default: every field) of ``model_name`` back to the environment's defaults."""
    named = set(fields)
    unknown = sorted(named - set(FIELDS))
    if unknown:
        raise PolicyError(f"no such policy field: {', '.join(unknown)} (the fields: {', '.join(FIELDS)})")
    return _change(settings, model_name,
                   lambda before: {k: v for k, v in before.items() if named and k not in named},
                   "policy_reset", actor=actor, channel=channel, reason=reason)


def replace_overrides(settings: Settings, model_name: str, overrides: Mapping[str, Any], *, actor: str,
                      channel: str, reason: str = "") -> list[Change]:
    """Make ``overrides`` the model's whole set of overrides (a field left out follows the default)."""
    merged(settings.watchdog, overrides)
    kind = "policy_set" if overrides else "policy_reset"
    return _change(settings, model_name, lambda _before: dict(overrides), kind, actor=actor,
                   channel=channel, reason=reason)


def _change(settings: Settings, model_name: str, update: Callable[[dict[str, Any]], dict[str, Any]],
            kind: str, *, actor: str, channel: str, reason: str) -> list[Change]:
    defaults = settings.watchdog
    with session_scope(settings.database_url) as session:
        lock_model(session, model_name)
        _refuse_unknown(session, model_name, settings.champion_alias)
        before = stored.overrides(session, model_name)
        after = update(before)
        new = merged(defaults, after)
        old = _applied(defaults, before, model_name)
        changes = [Change(name, getattr(old, name), getattr(new, name), name in before, name in after)
                   for name in FIELDS
                   if getattr(old, name) != getattr(new, name) or (name in before) != (name in after)]
        if not changes:
            return []
        now = utcnow()
        stored.save(session, model_name, {name: getattr(new, name) for name in after}, actor=actor, now=now)
        detail = "; ".join(str(change) for change in changes) + (f" (reason: {reason})" if reason else "")
        history.record_access(session, actor=actor, action=kind, allowed=True, channel=channel,
                              model_name=model_name, detail=detail)
        event = PolicyChanged(type=kind, model=model_name, occurred_at=now, actor=actor, reason=reason,
                              changes={c.field: FieldChange(old=c.old, new=c.new, override=c.new_override)
                                       for c in changes})
        outbox.enqueue(session, model_name=model_name, kind=kind, severity="info",
                       title=f"{model_name}: watchdog policy changed by {actor}",
                       facts={c.field: str(c).split(": ", 1)[1] for c in changes} | ({"reason": reason} if reason else {}),
                       link=settings.dashboard_url, now=now, event=event.document())
    return changes
