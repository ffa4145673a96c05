"""``vigil keys``: client keys for the API (create, list, revoke), stored hashed in Vigil's store.

``vigil keys create NAME --scope predict --scope feedback`` prints the key once: it is not stored
and cannot be shown again. A revoked key is refused by every API worker within
``VIGIL_KEY_REFRESH_SECONDS`` (2 s by default).
"""

from __future__ import annotations

import getpass

import click

from monitoring.client_keys import SCOPE_HELP, SCOPES
from monitoring.settings import get_settings


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "cli:unknown"


def _fail(error: Exception) -> None:
    click.echo(f"error: {error}", err=True)
    raise SystemExit(2)


@click.group()
def keys() -> None:
    """Client keys for /predict, /feedback and the operator endpoints."""


@keys.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="repeatable: " + "; ".join(f"{s}: {h}" for s, h in SCOPE_HELP.items()))
def create(name: str, scopes: tuple[str, ...]) -> None:
    """Make a key for client NAME and print it once (only its hash is kept)."""
    from monitoring.store.client_keys import create_key

    try:
        row, text = create_key(get_settings().database_url, name=name, scopes=list(scopes),
                               actor=_actor(), channel="cli")
    except ValueError as error:
        _fail(error)
    click.echo(f"key {row.id} for {row.name} (prefix {row.prefix}, scopes: {' '.join(row.scopes)})", err=True)
    click.echo("shown once, store it now (send it as the X-Vigil-Key header):", err=True)
    click.echo(text)


@keys.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="revoked keys too")
def list_command(include_revoked: bool) -> None:
    """The keys: id, client, prefix, scopes, who made them and when (never the secret)."""
    from monitoring.store.client_keys import list_keys

    rows = list_keys(get_settings().database_url, include_revoked=include_revoked)
    if not rows:
        click.echo("no keys (vigil keys create NAME --scope predict)")
        return
    for row in rows:
        state = "active" if row.active else f"revoked {row.revoked_at:%Y-%m-%d %H:%M} by {row.revoked_by}"
        click.echo(f"{row.id:<4} {row.name:<20} {row.prefix}  {' '.join(row.scopes):<40} "
                   f"made {row.created_at:%Y-%m-%d %H:%M} by {row.created_by}; {state}")


@keys.command("revoke")
@click.argument("which")
def revoke(which: str) -> None:
    """Revoke key WHICH (its id or prefix), or every active key of the client named WHICH."""
    from monitoring.store.client_keys import revoke_keys

    try:
        rows = revoke_keys(get_settings().database_url, which, actor=_actor(), channel="cli")
    except ValueError as error:
        _fail(error)
    for row in rows:
        click.echo(f"revoked key {row.id} ({row.prefix}) of {row.name}")
    click.echo(f"the API refuses it within {get_settings().key_refresh_seconds:g} s "
               "(VIGIL_KEY_REFRESH_SECONDS)", err=True)
