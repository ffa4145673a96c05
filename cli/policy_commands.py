"""``vigil policy``: the watchdog policy of each model (its own values of the ``VIGIL_*``
thresholds, over the environment's defaults): see it, set fields, give them back to the defaults.
Every change is audited (who, when, old -> new); a bad value is refused and nothing is changed."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from monitoring.settings import WatchdogPolicy, get_settings
from monitoring.watchdog import model_policy


def _guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from cli.main import _user_errors

        return _user_errors(func)(*args, **kwargs)

    return wrapper


def _field_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """One ``--field-name VALUE`` option per policy field (validated as the variable is)."""
    for name, info in reversed(WatchdogPolicy.model_fields.items()):
        func = click.option(f"--{name.replace('_', '-')}", name, default=None,
                            metavar=info.annotation.__name__.upper(),
                            help=f"default: VIGIL_{name.upper()}")(func)
    return func


def _echo_changes(model_name: str, changes: list[model_policy.Change]) -> None:
    if not changes:
        click.echo(f"{model_name}: nothing changed")
    for change in changes:
        click.echo(f"{model_name}: {change}")


@click.group("policy")
def policy_group() -> None:
    """A model's watchdog policy: thresholds, minimum labels, cooldown, rollback budget."""


@policy_group.command("show")
@click.argument("model_name", required=False)
@_guarded
def show(model_name: str | None) -> None:
    """The policy the watchdog applies to MODEL_NAME (default: every model Vigil knows); "override"
    marks the model's own values, the others are the environment's defaults."""
    settings = get_settings()
    shown = ([model_policy.view(settings.database_url, settings.watchdog, model_name,
                                known_by=settings.champion_alias)] if model_name else
             model_policy.views(settings.database_url, settings.watchdog, settings.champion_alias))
    if not shown:
        click.echo("Vigil knows no model yet; the defaults apply to every model:")
        shown = [model_policy.PolicyView("(defaults)", settings.watchdog, settings.watchdog, {})]
    for view in shown:
        by = (f" (last changed by {view.updated_by} at {view.updated_at:%Y-%m-%d %H:%M} UTC)"
              if view.updated_by else "")
        click.echo(f"{view.model_name}{by}")
        for name, value, default, overridden in view.rows():
            click.echo(f"  {name:<28} {value:<10g}" + (f" override (default {default:g})" if overridden else ""))


@policy_group.command("set")
@click.argument("model_name")
@_field_options
@click.option("--reason", default="", help="why (recorded in the audit trail)")
@_guarded
def set_fields(model_name: str, reason: str, **fields: str | None) -> None:
    """Give MODEL_NAME its own value of each field named, e.g. --min-labels 100 --cooldown-minutes 60."""
    from cli.main import _actor

    values = {name: value for name, value in fields.items() if value is not None}
    if not values:
        raise click.UsageError("name at least one field, e.g. --min-labels 100 (see vigil policy set -h)")
    _echo_changes(model_name, model_policy.set_fields(get_settings(), model_name, values, actor=_actor(),
                                                      channel="cli", reason=reason))


@policy_group.command("reset")
@click.argument("model_name")
@click.argument("fields", nargs=-1)
@click.option("--reason", default="", help="why (recorded in the audit trail)")
@_guarded
def reset_fields(model_name: str, fields: tuple[str, ...], reason: str) -> None:
    """Give FIELDS of MODEL_NAME (default: all of them) back to the environment's defaults."""
    from cli.main import _actor

    named = [field.replace("-", "_") for field in fields]
    _echo_changes(model_name, model_policy.reset_fields(get_settings(), model_name, named, actor=_actor(),
                                                        channel="cli", reason=reason))
