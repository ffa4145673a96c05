"""``vigil db roles``: the read-only database role's grants (the ``vigil db`` group is in cli.main)."""

from __future__ import annotations

import sys

import click

from monitoring.settings import get_settings


@click.command("roles")
@click.option("--reader", default="vigil_reader", show_default=True,
              help="the existing PostgreSQL role that may read and change nothing")
def db_roles(reader: str) -> None:
    """Let a role read Vigil's store (PostgreSQL) and nothing more; run as the store's owner."""
    from monitoring.store.roles import RolesError, grant_reader

    try:
        granted = grant_reader(get_settings().database_url, reader)
    except (RolesError, ValueError) as error:  # ValueError: a bad setting (a *_FILE secret)
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    click.echo(str(granted))
