"""How far back the prediction log goes: the oldest prediction still stored (the dashboard says so).

One index probe per model (the log's index leads with the model name, then the time), so the
answer costs the same on a day's log and on a month's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from monitoring.store.engine import get_engine
from monitoring.store.retention import model_names
from monitoring.store.tables import Prediction


def oldest_prediction(url: str) -> datetime | None:
    """The time of the oldest stored prediction of any model; None when there is none."""
    with get_engine(url).connect() as connection:
        oldest = [connection.execute(select(func.min(Prediction.created_at))
                                     .where(Prediction.model_name == name)).scalar()
                  for name in model_names(connection)]
    return min((moment for moment in oldest if moment is not None), default=None)
