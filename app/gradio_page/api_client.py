"""The prediction API as the Gradio page sees it: ``GET /model``, ``POST /predict`` and
``POST /feedback`` over HTTP (httpx), so the page's traffic is logged like any client's. It sends
its own client key (``VIGIL_CLIENT_KEY``: scopes predict and feedback; give it ``trusted`` only if
the page's visitors' labels are to count in the watchdog's decisions) as ``X-Vigil-Key``.

Failures come back as two errors whose messages can be shown to an end user as they are:
``ApiUnavailable`` (the service cannot answer now: down, timing out, no model, store down) and
``ApiRejected`` (the service refused this request, with its reason).
"""

from __future__ import annotations

from typing import Any

import httpx

from monitoring.client_keys import HEADER

USER_AGENT = "vigil-gradio-page"


class ApiUnavailable(RuntimeError):
    """The API cannot answer right now; try again later."""


class ApiRejected(ValueError):
    """The API refused the request (4xx); ``detail`` is its reason."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


class PredictionApi:
    def __init__(self, base_url: str, timeout: float = 10.0, key: str | None = None):
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": USER_AGENT, **({HEADER: key} if key else {})}
        self._client = httpx.Client(base_url=self.base_url, headers=headers,
                                    timeout=httpx.Timeout(timeout, connect=3.0))

    def close(self) -> None:
        self._client.close()

    def model(self) -> dict[str, Any]:
        return self._call("GET", "/model")

    def predict(self, row: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/predict", json=row)

    def feedback(self, prediction_id: str, label: Any) -> dict[str, Any]:
        return self._call("POST", "/feedback", json={"prediction_id": prediction_id, "label": label})

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiUnavailable(f"the prediction service at {self.base_url} did not answer in time; "
                                 f"please try again in a moment") from None
        except httpx.HTTPError:
            raise ApiUnavailable(f"the prediction service at {self.base_url} is not reachable right now; "
                                 f"please try again in a moment") from None
        if response.status_code >= 500:
            raise ApiUnavailable(f"the prediction service cannot answer right now ({_detail(response)}); "
                                 f"please try again in a moment")
        if response.status_code >= 400:
            raise ApiRejected(response.status_code, _detail(response))
        try:
            return response.json()
        except ValueError:
            raise ApiUnavailable(f"the prediction service at {self.base_url} sent an answer that is not "
                                 f"JSON (HTTP {response.status_code}); is VIGIL_API_URL right?") from None


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # FastAPI's validation errors
        detail = "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)
    return str(detail) if detail else f"HTTP {response.status_code}"
