"""``vigil canary`` and ``vigil shadow``: send a version to a challenger release, see how it is
judged, and promote or abort it by hand (every move audited; the watchdog decides by itself)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from monitoring.settings import get_settings


def _guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from cli.main import _user_errors

        return _user_errors(func)(*args, **kwargs)

    return wrapper


def _start(mode: str, name: str | None, version: int, share: float, bake_minutes: float | None,
           reason: str) -> None:
    from cli.main import _actor
    from monitoring.registry.releases import start_release
    from monitoring.runtime import Runtime

    settings = get_settings()
    model_name = name or settings.model_name
    bake = settings.release.bake_minutes if bake_minutes is None else bake_minutes
    release = start_release(Runtime(settings), model_name=model_name, version=version, mode=mode, share=share,
                            actor=_actor(), reason=reason, bake_minutes=bake)
    what = "answers" if mode == "canary" else "also scores (never returned)"
    click.echo(f"{model_name}: {mode} of version {version} started (release {release.id}); it {what} "
               f"{share:.0%} of the requests beside version {release.champion_version}; no promotion "
               f"before {release.bake_until:%H:%M:%S} UTC. Follow it: vigil canary status {model_name}")


@click.group("canary")
def canary_group() -> None:
    """Canary and shadow releases: start a canary, see a release's verdict, promote or abort it."""


@canary_group.command("start")
@click.argument("version", type=int)
@click.option("--model-name", default=None)
@click.option("--share", type=float, default=None, help="share of requests it answers (default VIGIL_RELEASE_DEFAULT_SHARE)")
@click.option("--bake-minutes", type=float, default=None, help="no promotion before (default VIGIL_RELEASE_BAKE_MINUTES)")
@click.option("--reason", default="canary release", show_default=True)
@_guarded
def canary_start(version, model_name, share, bake_minutes, reason) -> None:
    """Send VERSION to a canary: a share of the requests is answered by it, the rest by the champion."""
    _start("canary", model_name, version, get_settings().release.default_share if share is None else share,
           bake_minutes, reason)


@canary_group.command("status")
@click.option("--model-name", default=None)
@_guarded
def canary_status(model_name) -> None:
    """The model's releases, newest first: state, and the judge's latest numbers for a running one."""
    from monitoring.store.engine import session_scope
    from monitoring.store.releases import releases

    settings = get_settings()
    name = model_name or settings.model_name
    with session_scope(settings.database_url) as session:
        rows = releases(session, name, limit=5)
        if not rows:
            click.echo(f"{name}: no release yet (vigil canary start VERSION, vigil shadow start VERSION)")
            return
        for release in rows:
            click.echo(f"release {release.id}: {release.mode} of v{release.challenger_version} against "
                       f"v{release.champion_version} at {release.share:.0%}, {release.state}; started "
                       f"{release.started_at:%Y-%m-%d %H:%M:%S} UTC by {release.started_by}")
            if release.verdict_reason:
                click.echo(f"  {release.verdict_reason}")
            if release.state == "running":
                for key, value in ((release.evidence or {}).get("latest") or {}).items():
                    if value is not None:
                        click.echo(f"  {key}: {value}")


def _end(decision: str, model_name: str | None, reason: str) -> None:
    from cli.main import _actor
    from monitoring.registry.releases import end_release_by_operator
    from monitoring.runtime import Runtime

    settings = get_settings()
    name = model_name or settings.model_name
    release = end_release_by_operator(Runtime(settings), model_name=name, decision=decision, actor=_actor(),
                                      reason=reason)
    click.echo(f"{name}: release {release.id} ({release.mode} of v{release.challenger_version}) {release.state}")


@canary_group.command("promote")
@click.option("--model-name", default=None)
@click.option("--reason", required=True, help="why (recorded in the audit trail)")
@_guarded
def canary_promote(model_name, reason) -> None:
    """Promote the running release's challenger to champion now (a canary's or a shadow's)."""
    _end("promote", model_name, reason)


@canary_group.command("abort")
@click.option("--model-name", default=None)
@click.option("--reason", required=True, help="why (recorded in the audit trail)")
@_guarded
def canary_abort(model_name, reason) -> None:
    """Abort the running release: the champion answers everything again."""
    _end("abort", model_name, reason)


@click.group("shadow")
def shadow_group() -> None:
    """Shadow releases: the challenger scores requests beside the champion, and is never returned."""


@shadow_group.command("start")
@click.argument("version", type=int)
@click.option("--model-name", default=None)
@click.option("--share", type=float, default=1.0, show_default=True, help="share of requests shadowed")
@click.option("--bake-minutes", type=float, default=None, help="no promotion before (default VIGIL_RELEASE_BAKE_MINUTES)")
@click.option("--reason", default="shadow release", show_default=True)
@_guarded
def shadow_start(version, model_name, share, bake_minutes, reason) -> None:
    """Send VERSION to a shadow release (status, promote and abort: vigil canary ...)."""
    _start("shadow", model_name, version, share, bake_minutes, reason)
