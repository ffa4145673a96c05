"""FastAPI dependencies: the typed settings and the running service, injected with ``Annotated``.

They are ``async`` so FastAPI calls them inline instead of in its thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from api.process import ApiProcess
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
