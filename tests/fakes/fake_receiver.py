"""A real local HTTP server standing in for a webhook receiver or PagerDuty's events endpoint.

It records every request (path, headers, parsed JSON body) and answers from a script of status
codes (``answers``, consumed one per request; 200 once it is empty). ``down=True`` answers 503.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes
    body: dict


@dataclass
class FakeReceiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    down: bool = False


def start_receiver() -> tuple[FakeReceiver, ThreadingHTTPServer]:
    """A running receiver on a free localhost port (shut the server down when done)."""
    state = FakeReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append(Received(self.path, dict(self.headers), raw, json.loads(raw)))
            status = 503 if state.down else (state.answers.pop(0) if state.answers else 200)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state, server
