"""What a promotion or an operator's rollback would do, before anyone does it.

The dashboard shows this preview and asks for confirmation; the move itself goes through
``monitoring.registry.promotion`` (the same locked, audited functions the watchdog uses), which checks
everything again under the model's lock. Here nothing is written: it reads the target version's
metrics and health, scores recent logged rows with the target model (a smoke prediction) and
renders the Slack message the move would send.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from monitoring.alerts.messages import render_plain
from monitoring.incidents import PAGE as INCIDENTS_PAGE
from monitoring.registry.mlflow_registry import RegistryError
from monitoring.registry.promotion import KIND_TITLES
from monitoring.registry.rollback_target import choose_rollback_target
from monitoring.runtime import Runtime
from monitoring.serving.servable import load_servable
from monitoring.store import dashboard_queries, history
from monitoring.store.engine import session_scope

MOVE_KINDS = ("promote", "manual_rollback")
SMOKE_ROWS = 20


@dataclass(frozen=True)
class SmokeResult:
    rows: int
    label_counts: dict[str, int] = field(default_factory=dict)
    mean_score: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class MovePreview:
    model_name: str
    kind: str
    current_version: int | None
    target_version: int | None
    target_health: str
    target_metrics: dict[str, float]
    smoke: SmokeResult | None
    slack_text: str
    problems: tuple[str, ...]  # why the move would be refused; empty when it may go ahead

    @property
    def allowed(self) -> bool:
        return not self.problems


def preview_move(
    runtime: Runtime, *, model_name: str, kind: str, actor: str, reason: str,
    to_version: int | None = None,
) -> MovePreview:
    """The preview of moving the champion alias to ``to_version`` (for a rollback: the default
    target of ``monitoring.registry.promotion.rollback`` when None)."""
    url, registry = runtime.store_url, runtime.registry
    if kind not in MOVE_KINDS:
        raise ValueError(f"kind must be one of {MOVE_KINDS}, not {kind!r}")
    alias = registry.settings.champion_alias
    current = registry.alias_version(model_name, alias)
    with session_scope(url) as session:
        health = {v.version: v.state for v in history.versions_health(session, model_name)}
        moves = [(e.from_version, e.to_version) for e in history.alias_history(session, model_name, alias)]
    if to_version is None and kind == "manual_rollback":
        to_version = choose_rollback_target(moves, health, current, require_healthy=False)
    problems = _problems(kind, current, to_version, health, reason)
    metrics: dict[str, float] = {}
    smoke = None
    if to_version is not None:
        try:
            metrics = registry.get_version(model_name, to_version).metrics
        except RegistryError as error:
            problems.append(str(error))
        else:
            smoke = smoke_prediction(runtime, model_name, to_version)
    slack_text = render_plain(
        move_payload(model_name, kind, current, to_version, actor, reason, _link(kind, registry.settings.dashboard_url)),
        model_name=model_name, kind=kind,
    ) if to_version is not None else ""
    return MovePreview(model_name, kind, current, to_version, health.get(to_version, "unknown"),
                       metrics, smoke, slack_text, tuple(problems))


def _link(kind: str, dashboard_url: str) -> str:
    """A rollback's message links its incident, whose id exists once the move is recorded."""
    if kind == "manual_rollback":
        return f"{dashboard_url.rstrip('/')}/{INCIDENTS_PAGE}?id={{this rollback's id}}"
    return dashboard_url


def _problems(kind: str, current: int | None, target: int | None, health: dict[int, str],
              reason: str) -> list[str]:
    """Pure: the reasons ``monitoring.registry.promotion`` would refuse this move."""
    problems = []
    if target is None:
        problems.append("no former champion to roll back to: choose a version" if kind == "manual_rollback"
                        else "choose a version to promote")
    elif target == current:
        problems.append(f"version {target} already holds the alias")
    elif health.get(target) == "bad":
        problems.append(f"version {target} is marked bad")
    if not reason.strip():
        problems.append("a reason is required")
    return problems


def move_payload(model_name: str, kind: str, current: int | None, target: int | None, actor: str,
                 reason: str, link: str | None) -> dict[str, Any]:
    """The outbox payload ``monitoring.registry.promotion.move_alias_in`` writes for this move."""
    return {
        "title": f"{model_name}: {KIND_TITLES.get(kind, kind)} to version {target}",
        "severity": "warning" if kind == "manual_rollback" else "info",
        "facts": {"model": model_name, "from version": current, "to version": target, "by": actor,
                  "reason": reason},
        "text": "",
        "link": link,
    }


def smoke_prediction(runtime: Runtime, model_name: str, version: int,
                     rows: int = SMOKE_ROWS) -> SmokeResult:
    """Score the newest logged inputs with ``version``; an error is reported, not raised."""
    url, registry = runtime.store_url, runtime.registry
    inputs = dashboard_queries.recent_inputs(url, model_name, rows)
    if inputs.empty:
        return SmokeResult(rows=0, error="no logged predictions to try the version on")
    try:
        model = load_servable(registry, model_name, version)
        scored = model.score_frame(inputs)
        labels = pd.Series(scored.labels).astype(str).value_counts()
        score = pd.Series(scored.scores if model.is_classifier else [], dtype=float).dropna()
    except Exception as error:  # noqa: BLE001 - any failure of the candidate model is the answer
        return SmokeResult(rows=len(inputs), error=f"{type(error).__name__}: {error}")
    return SmokeResult(rows=len(inputs), label_counts={str(k): int(v) for k, v in labels.items()},
                       mean_score=float(score.mean()) if not score.empty else None)
