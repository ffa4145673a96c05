"""``vigil alerts``: what is firing, and acknowledging an alert (audited; PagerDuty acknowledge)."""

from __future__ import annotations

import sys

import click

from monitoring.settings import get_settings


@click.group("alerts")
def alerts_group() -> None:
    """Vigil's alerts."""


@alerts_group.command("ack")
@click.argument("key")
def ack(key: str) -> None:
    """Acknowledge the firing alert KEY: its thread, PagerDuty and the access log say who has it."""
    from cli.main import _actor
    from monitoring.alerts.acknowledgement import acknowledge

    try:
        said = acknowledge(get_settings().database_url, key, _actor(), channel="cli")
    except (LookupError, ValueError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    click.echo(said)
