"""Start, watch and stop the processes of the embedded demo (API, pages, MLflow UI, Airflow...).

Each process runs in its own process group with its output in ``<log_dir>/<name>.log``;
``stop_all`` ends them all (SIGTERM, then SIGKILL after a grace period), so Ctrl-C leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Service:
    name: str
    command: list[str]
    url: str | None = None  # what to show the user
    ready_url: str | None = None  # polled until it answers 2xx/3xx
    env: dict[str, str] = field(default_factory=dict)


class Supervisor:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, tuple[Service, subprocess.Popen]] = {}

    def start(self, service: Service) -> None:
        log = open(self.log_dir / f"{service.name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            service.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **service.env}, start_new_session=True,
        )
        log.close()
        self.running[service.name] = (service, process)

    def wait_ready(self, name: str, timeout: float) -> bool:
        service, process = self.running[name]
        if service.ready_url is None:
            return process.poll() is None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                if httpx.get(service.ready_url, timeout=2.0).status_code < 400:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        return False

    def exited(self) -> list[tuple[str, int]]:
        return [(name, process.returncode) for name, (_, process) in self.running.items()
                if process.poll() is not None]

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, name: str, grace: float = 10.0) -> None:
        _, process = self.running.pop(name)
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()

    def stop_all(self, grace: float = 10.0) -> None:
        for _, process in self.running.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _, process in self.running.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        self.running.clear()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
