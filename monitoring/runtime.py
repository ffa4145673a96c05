"""The composition root: what every entry point needs, built once from the settings.

The CLI, the DAG tasks, the API and the dashboard each build one ``Runtime`` per process and pass
it to the core's entry points, instead of handing the store URL, a registry and the settings
around separately. Building it connects to nothing: the MLflow registry client is made on first
use, so commands that never touch MLflow (``vigil db upgrade``) never import it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from monitoring.settings import Settings, get_settings

if TYPE_CHECKING:
    from monitoring.registry.mlflow_registry import Registry


class Runtime:
    """The settings, Vigil's store and the MLflow registry of one process."""

    def __init__(self, settings: Settings, registry: Registry | None = None):
        self.settings = settings
        if registry is not None:
            self.__dict__["registry"] = registry

    @classmethod
    def from_environment(cls) -> Runtime:
        """The process-wide settings (read from ``VIGIL_`` variables on first use) and their store."""
        return cls(get_settings())

    @property
    def store_url(self) -> str:
        """Vigil's own store: every ``monitoring.store`` function takes this URL."""
        return self.settings.database_url

    @cached_property
    def registry(self) -> Registry:
        """The MLflow tracking and registry client, made on first use."""
        from monitoring.registry.mlflow_registry import Registry

        return Registry(self.settings)

    def __repr__(self) -> str:  # URLs may carry passwords: none of them here
        return f"Runtime(model={self.settings.model_name!r})"
