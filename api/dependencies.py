"""FastAPI dependencies: the typed settings, the running service and the model a request names,
injected with ``Annotated``.

They are ``async`` so FastAPI calls them inline instead of in its thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request

from api.process import ApiProcess
from monitoring.serving.served_model import ServedModel
from monitoring.settings import Settings


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _service(request: Request) -> ApiProcess:
    service = getattr(request.app.state, "service", None)
    if service is None:
        raise HTTPException(503, "the service is starting or stopping")
    return service


SettingsDep = Annotated[Settings, Depends(_settings)]
ApiProcessDep = Annotated[ApiProcess, Depends(_service)]


def served_model(service: ApiProcess, model_name: str | None) -> ServedModel:
    """The served model named ``model_name`` (None: the default one); 404 naming the served ones."""
    if model_name is None:
        return service.default
    served = service.models.get(model_name)
    if served is None:
        raise HTTPException(404, f"this API does not serve a model named {model_name[:200]!r}; it serves "
                                 f"{', '.join(service.models)} (VIGIL_SERVED_MODELS); nothing was done")
    return served


async def _named_model(service: ApiProcessDep, model_name: Annotated[str, Path(
        description="one of the models this API serves (VIGIL_SERVED_MODELS)")]) -> ServedModel:
    return served_model(service, model_name)


NamedModelDep = Annotated[ServedModel, Depends(_named_model)]
