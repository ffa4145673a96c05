"""A ``Runtime`` on a test's own store URL, registry and settings (tests keep several stores at once)."""

from __future__ import annotations

from monitoring.runtime import Runtime
from monitoring.settings import Settings


def runtime_for(url: str, registry=None, settings: Settings | None = None) -> Runtime:
    """The runtime the entry points get, with the store at ``url`` (and ``registry`` when given)."""
    base = settings or (registry.settings if registry is not None else Settings())
    return Runtime(base.model_copy(update={"database_url": url}), registry)
