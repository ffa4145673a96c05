"""Which requests a release's challenger takes: pure logic, no I/O.

A caller (``X-Vigil-Caller``, else the client of the request's key) is hashed with the release's
id into [0, 1): the same caller lands on the same side for the whole release, and a new release
reshuffles callers. A request with no caller draws at random. The challenger takes the request when
the point falls below the release's share.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

CALLER_HEADER = "X-Vigil-Caller"
_SCALE = float(1 << 64)


def caller_point(release_id: int, caller: str) -> float:
    """The caller's fixed point in [0, 1) for this release."""
    digest = hashlib.blake2b(f"{release_id}\x00{caller}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def takes_challenger(release_id: int, share: float, caller: str | None,
                     draw: Callable[[], float] = random.random) -> bool:
    """Whether this request goes to the challenger (answered by it in a canary, scored by it in a shadow)."""
    if share <= 0.0:
        return False
    if share >= 1.0:
        return True
    point = caller_point(release_id, caller) if caller else draw()
    return point < share
