"""A fake Slack: a real HTTP server on 127.0.0.1 that the real slack_sdk talks to.

It serves ``POST /api/chat.postMessage`` (bot token checked, answers ``ok`` with ``channel`` and
``ts``) and an incoming-webhook path, and records every request it receives, JSON decoded. Switches
make it answer 429 with Retry-After, answer 5xx, refuse blocks, answer slowly, or be down
(connection refused) and come back on the same port.

Tests get it as the ``fake_slack`` fixture after
``from tests.fakes.fake_slack import fake_slack_fixture  # noqa: F401``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest

WEBHOOK_PATH = "/services/T0FAKE/B0FAKE/webhooksecret"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int  # what the fake answered
    accepted: bool  # the message was posted


class FakeSlack:
    token = "xoxb-fake-vigil-token"
    channel_id = "C0VIGIL01"

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[Received] = []
        self.reject_blocks = False
        self.delay_seconds = 0.0
        self._failures: deque[tuple[int, dict[str, str], dict[str, Any]]] = deque()
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- where to point the SDK
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    # -- switches
    def rate_limit(self, retry_after: int, times: int = 1) -> None:
        """The next ``times`` requests get 429 with ``Retry-After: retry_after``."""
        with self._lock:
            for _ in range(times):
                self._failures.append(
                    (429, {"Retry-After": str(retry_after)}, {"ok": False, "error": "ratelimited"})
                )

    def fail(self, status: int = 503, times: int = 1) -> None:
        """The next ``times`` requests get HTTP ``status``."""
        with self._lock:
            for _ in range(times):
                self._failures.append((status, {}, {"ok": False, "error": "service_unavailable"}))

    def down(self) -> None:
        """Stop listening: clients get "connection refused" until ``up()``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def up(self) -> None:
        """Listen again (on the same port once started)."""
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
            self._server.daemon_threads = True
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
            self._thread.start()

    # -- what it saw
    def posted(self) -> list[dict[str, Any]]:
        """Bodies of the messages it accepted, in arrival order."""
        with self._lock:
            return [r.body for r in self.requests if r.accepted]

    # -- request handling (called from server threads)
    def _answer(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict, Any]:
        body = _decode(raw, headers.get("content-type", ""))
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        with self._lock:
            status, extra, answer, accepted = self._decide(path, headers, body)
            self.requests.append(Received(path, headers, body, status, accepted))
        return status, extra, answer

    def _decide(self, path, headers, body):
        if self._failures:
            status, extra, answer = self._failures.popleft()
            if path == WEBHOOK_PATH:  # webhooks answer errors in plain text
                answer = answer["error"]
            return status, extra, answer, False
        if path == WEBHOOK_PATH:
            if not body.get("text") and not body.get("blocks"):
                return 400, {}, "no_text", False
            if self.reject_blocks and body.get("blocks"):
                return 400, {}, "invalid_blocks", False
            return 200, {}, "ok", True
        if path != "/api/chat.postMessage":
            return 404, {}, {"ok": False, "error": "unknown_method"}, False
        if headers.get("authorization") != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}, False
        if not body.get("channel"):
            return 200, {}, {"ok": False, "error": "channel_not_found"}, False
        if not body.get("text") and not body.get("blocks"):
            return 200, {}, {"ok": False, "error": "no_text"}, False
        if self.reject_blocks and body.get("blocks"):
            return 200, {}, {"ok": False, "error": "invalid_blocks"}, False
        ts = f"{1_700_000_000 + next(self._ts)}.000100"
        message = {"text": body.get("text"), "ts": ts, "thread_ts": body.get("thread_ts")}
        return 200, {}, {"ok": True, "channel": self.channel_id, "ts": ts, "message": message}, True


def _decode(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if "json" in content_type:
        return json.loads(raw)
    return dict(parse_qsl(raw.decode()))


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, answer = fake._answer(self.path, headers, raw)
            data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(answer, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
            pass

    return Handler


@pytest.fixture(name="fake_slack")
def fake_slack_fixture():
    """A running fake Slack on a random loopback port, stopped after the test."""
    fake = FakeSlack()
    fake.up()
    yield fake
    fake.down()
