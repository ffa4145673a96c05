"""The operator lockout rule: after N wrong tokens within a window, a client waits a period.

Pure: it takes the times of a client's recent refusals (from the access log, so every API worker
and dashboard session sees the same ones) and says how long the client must still wait. While a
client is locked out its attempts are answered 429 and not written, so a lockout cannot extend
itself and the recorded refusals per client stay capped at N per window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta


def retry_after(refusals: Sequence[datetime], now: datetime, *, max_failures: int,
                window: timedelta, lockout: timedelta) -> float:
    """Seconds the client must still wait (0: not locked out).

    A lockout starts at the refusal that completes ``max_failures`` refusals within ``window``
    and lasts ``lockout``; the latest such start counts.
    """
    times = sorted(refusals)
    ends = [times[i] + lockout for i in range(max_failures - 1, len(times))
            if times[i] - times[i - max_failures + 1] <= window]
    wait = (max(ends) - now).total_seconds() if ends else 0.0
    return max(wait, 0.0)


def lookback(window: timedelta, lockout: timedelta) -> timedelta:
    """How far back refusals can still matter to ``retry_after``."""
    return window + lockout
