"""The running release of a model as the API reads it: which challenger, in which mode, at what share.

The watchdog's release moves (monitoring/store/releases.py) write the ``releases`` table; the API
only reads the one running row per model, every few seconds (monitoring/serving/release_follower.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from monitoring.store.engine import session_scope
from monitoring.store.tables import Release

SHADOW = "shadow"
CANARY = "canary"


@dataclass(frozen=True)
class RunningRelease:
    id: int
    model_name: str
    mode: str  # shadow | canary
    challenger_version: int
    champion_version: int
    share: float  # canary: requests answered by the challenger; shadow: requests shadowed


def running_release(url: str, model_name: str) -> RunningRelease | None:
    """The model's running release (the newest, should there ever be two); None when none runs."""
    query = (select(Release.id, Release.model_name, Release.mode, Release.challenger_version,
                    Release.champion_version, Release.share)
             .where(Release.model_name == model_name, Release.state == "running")
             .order_by(Release.id.desc()).limit(1))
    with session_scope(url) as session:
        row = session.execute(query).first()
    return RunningRelease(*row) if row is not None else None
