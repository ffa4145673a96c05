"""Container health check for docker-compose.yml: ``python healthcheck.py URL [TIMEOUT]`` exits 0
when the URL answers with a 2xx status in time, 1 otherwise (standard library only)."""

from __future__ import annotations

import sys
import urllib.request


def check(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except Exception as error:  # noqa: BLE001 - any failure means "unhealthy"
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return False


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: healthcheck.py URL [TIMEOUT_SECONDS]", file=sys.stderr)
        return 2
    return 0 if check(argv[1], float(argv[2]) if len(argv) == 3 else 5.0) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
