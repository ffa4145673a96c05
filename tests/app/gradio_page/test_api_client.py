"""The page's HTTP client against a real HTTP server on loopback that answers what the API may answer."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.gradio_page.api_client import ApiRejected, ApiUnavailable, PredictionApi

ANSWERS = {
    "/model": (200, "application/json", json.dumps({"model_name": "m", "loaded": True, "version": 3})),
    "/predict": (422, "application/json", json.dumps({"detail": "feature 'age' must be a number, got string"})),
    "/feedback": (503, "application/json", json.dumps({"detail": "the store is unreachable"})),
    "/validation": (422, "application/json", json.dumps({"detail": [{"msg": "field required"}, {"msg": "too long"}]})),
    "/html": (200, "text/html", "<html>not the API</html>"),
}


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        status, content_type, body = ANSWERS[self.path]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = _answer

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def api() -> Iterator[PredictionApi]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = PredictionApi(f"http://127.0.0.1:{server.server_address[1]}/")
    yield client
    client.close()
    server.shutdown()


def test_an_answer_is_returned_as_json(api):
    assert api.model()["version"] == 3


def test_a_refusal_carries_the_api_s_reason(api):
    with pytest.raises(ApiRejected) as caught:
        api.predict({"age": "x"})
    assert (caught.value.status, caught.value.detail) == (422, "feature 'age' must be a number, got string")
    with pytest.raises(ApiRejected, match="field required; too long"):
        api._call("POST", "/validation")


def test_a_server_error_means_unavailable_with_the_reason(api):
    with pytest.raises(ApiUnavailable, match=r"cannot answer right now \(the store is unreachable\)"):
        api.feedback("id", 1)


def test_an_answer_that_is_not_json_points_at_the_url_setting(api):
    with pytest.raises(ApiUnavailable, match="not JSON .*VIGIL_API_URL"):
        api._call("GET", "/html")


def test_nothing_listening_means_unavailable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ApiUnavailable, match=f"at http://127.0.0.1:{port} is not reachable right now"):
        PredictionApi(f"http://127.0.0.1:{port}").model()
