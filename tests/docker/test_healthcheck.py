"""docker/healthcheck.py against a real HTTP server on loopback: 2xx is healthy, anything else not."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "healthcheck.py"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=30,
                          check=False)


def test_a_2xx_answer_is_healthy(server_url):
    assert run(f"{server_url}/health").returncode == 0


def test_an_error_status_or_no_server_is_unhealthy(server_url):
    failed = run(f"{server_url}/other")
    assert failed.returncode == 1 and "503" in failed.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    assert run(f"http://127.0.0.1:{dead}/health", "2").returncode == 1


def test_wrong_usage_says_how():
    done = run()
    assert done.returncode == 2 and "usage:" in done.stderr
