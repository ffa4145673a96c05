"""How often the monitoring DAG runs: as often as a monitoring window closes, so each window is
computed within a minute of its end (one-minute windows in the demo, five by default).

Only the standard library: the DAG file reads this while Airflow parses it.
"""

from __future__ import annotations

import math
import os

WINDOW_MINUTES_VARIABLE = "VIGIL_WINDOW_MINUTES"
DEFAULT_WINDOW_MINUTES = 5


def monitoring_cron(window_minutes: int) -> str:
    """The cron of a run at every window end: windows are aligned on the epoch (on whole hours),
    so a run every gcd(window, 60) minutes meets each end (hourly for a window of whole hours)."""
    if window_minutes <= 0:
        raise ValueError(f"{WINDOW_MINUTES_VARIABLE} must be a positive number of minutes, not {window_minutes}")
    step = math.gcd(window_minutes, 60)
    if step == 60:
        return "0 * * * *"
    return "* * * * *" if step == 1 else f"*/{step} * * * *"


def configured_cron(environ: dict[str, str] | None = None) -> str:
    """``monitoring_cron`` of the window the environment sets (VIGIL_WINDOW_MINUTES, default 5)."""
    raw = (os.environ if environ is None else environ).get(WINDOW_MINUTES_VARIABLE) \
        or str(DEFAULT_WINDOW_MINUTES)  # empty counts as unset, as in the settings
    try:
        minutes = int(raw)
    except ValueError:
        raise ValueError(f"{WINDOW_MINUTES_VARIABLE} must be a whole number of minutes, not {raw!r}") from None
    return monitoring_cron(minutes)
