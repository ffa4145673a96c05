"""HTTP for alert routes (webhook, PagerDuty): the only alerts module that imports httpx.

``post_json`` sends one JSON body and returns nothing on a 2xx; anything else is a
``RouteError`` carrying the receiver's ``Retry-After`` (seconds) when it sent one. Header values
(signatures, keys) and the body never appear in the error.
"""

from __future__ import annotations

import httpx


class RouteError(Exception):
    """The route did not take the message; ``retry_after`` is the wait it asked for, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def post_json(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> None:
    """POST ``body`` (JSON bytes) to ``url``; ``RouteError`` unless the answer is 2xx."""
    try:
        response = httpx.post(url, content=body, timeout=timeout,
                              headers={"Content-Type": "application/json", **headers})
    except httpx.HTTPError as error:
        raise RouteError(f"{type(error).__name__} talking to {_host(url)}") from None
    if not response.is_success:
        raise RouteError(f"{_host(url)} answered {response.status_code}",
                         retry_after=_retry_after(response.headers.get("Retry-After")))


def _host(url: str) -> str:
    return httpx.URL(url).host or "the route"


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
