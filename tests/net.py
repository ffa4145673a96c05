"""Loopback helpers for tests that start real servers: a free port, and waiting until one answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, *, what: str, timeout: float = 60.0,
                       alive: Callable[[], bool] = lambda: True) -> None:
    """Poll ``url`` until it answers 200; fail if ``alive()`` turns false or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert alive(), f"{what} exited"
        assert time.monotonic() < deadline, f"{what} did not become healthy in {timeout:.0f} s"
        time.sleep(0.2)
