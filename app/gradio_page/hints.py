"""Per-feature hints for the form (categories, observed range, a typical value), read from the
reference data Vigil recorded for the version at training time.

``GET /model`` names the features and their kinds; the categories and ranges live in the
version's reference sample in MLflow. Hints only make the form nicer: when the store or MLflow
cannot be reached the form is built without them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pandas as pd

from app.gradio_page.form import Hint
from monitoring.runtime import Runtime
from monitoring.settings import Settings

log = logging.getLogger(__name__)

MAX_CATEGORIES = 50

HintSource = Callable[[str, int], dict[str, Hint]]


def hints_from_frame(frame: pd.DataFrame, numerical: list[str], categorical: list[str]) -> dict[str, Hint]:
    """Range and median of numerical columns; categories (most frequent first) and mode of the others."""
    hints: dict[str, Hint] = {}
    for name in numerical:
        values = pd.to_numeric(frame[name], errors="coerce").dropna()
        if values.empty:
            continue
        hints[name] = Hint(minimum=float(values.min()), maximum=float(values.max()),
                           example=float(values.median()))
    for name in categorical:
        counts = frame[name].dropna().astype(str).value_counts()
        if counts.empty:
            continue
        hints[name] = Hint(categories=tuple(counts.index[:MAX_CATEGORIES]), example=str(counts.index[0]))
    return hints


class ReferenceHints:
    """Hints per (model, version), read once from the store and MLflow and then kept."""

    def __init__(self, settings: Settings):
        self.runtime = Runtime(settings)
        self._cache: dict[tuple[str, int], dict[str, Hint]] = {}
        self._lock = threading.Lock()

    def __call__(self, model_name: str, version: int) -> dict[str, Hint]:
        key = (model_name, version)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        hints = self._read(model_name, version)
        if hints is not None:
            with self._lock:
                self._cache[key] = hints
        return hints or {}

    def _read(self, model_name: str, version: int) -> dict[str, Hint] | None:
        from monitoring.metrics.references import load_reference

        try:
            reference = load_reference(self.runtime, model_name, version)
        except Exception as error:  # noqa: BLE001 - hints are optional; the form works without them
            log.warning("no form hints for %s version %s: %s", model_name, version, type(error).__name__)
            return None
        if reference is None:
            return {}
        return hints_from_frame(reference.frame, reference.numerical, reference.categorical)
