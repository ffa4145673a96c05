"""Who is calling ``/predict`` and ``/feedback``: the client key in ``X-Vigil-Key``, checked
against the API's cached copy of the keys (``monitoring.serving.key_cache``).

``VIGIL_OPEN_ACCESS=true`` (the embedded demo) lets a request without a key in, as the open
client with every client scope; a request that sends a key is checked all the same.
"""

from __future__ import annotations

from fastapi import HTTPException, Request

from api.process import ApiProcess
from monitoring.client_keys import HEADER, OPEN, Grant
from monitoring.serving.key_cache import KeyRefused


def grant_for(service: ApiProcess, request: Request, scope: str) -> Grant:
    """The caller's grant for ``scope``; 401 (no, unknown or revoked key), 403 (scope) or 503."""
    text = request.headers.get(HEADER)
    if not text and service.settings.open_access:
        return OPEN
    try:
        return service.keys.authorize(text, scope)
    except KeyRefused as refused:
        headers = {"WWW-Authenticate": HEADER} if refused.status == 401 else None
        raise HTTPException(refused.status, refused.message, headers=headers) from None
