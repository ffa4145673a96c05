"""Start, watch and stop the processes of the embedded demo (API, pages, MLflow UI, Airflow...).

Each process runs in its own process group with its output in ``<log_dir>/<name>.log``;
``stop_all`` ends them all (SIGTERM, then SIGKILL after a grace period). Used as a context
manager, the supervisor turns SIGINT (Ctrl-C), SIGTERM (``kill``, systemd, ``docker stop``) and
SIGHUP (a closed terminal) alike into ``StopRequested`` in the main thread, so whichever ends the
demo, the caller's ``finally`` stops every child and nothing is left on its port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx
import psutil

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequested(Exception):
    """A stop signal arrived; ``signal_name`` says which."""

    def __init__(self, signum: int):
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"stopped by {self.signal_name}")


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
        self._previous_handlers: dict[int, object] = {}
        self._deferring = False
        self._deferred: int | None = None

    # -- stop signals ---------------------------------------------------------------------
    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous_handlers[signum] = signal.signal(signum, self._on_stop_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def _on_stop_signal(self, signum: int, _frame: object) -> None:
        if self._deferring:
            self._deferred = self._deferred or signum
            return
        raise StopRequested(signum)

    @contextmanager
    def _signals_deferred(self) -> Iterator[None]:
        """A stop signal arriving inside is raised on leaving (never half-way through)."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self._deferred is not None:
            signum, self._deferred = self._deferred, None
            raise StopRequested(signum)

    # -- children -------------------------------------------------------------------------
    def start(self, service: Service) -> None:
        # Deferred: a child started but not yet recorded would be left running by stop_all.
        with self._signals_deferred():
            log = open(self.log_dir / f"{service.name}.log", "ab")  # noqa: SIM115 - closed below
            try:
                process = subprocess.Popen(
                    service.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env={**os.environ, **service.env}, start_new_session=True,
                )
            finally:
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
        with self._signals_deferred():
            _, process = self.running.pop(name)
            _stop_processes([process], grace)

    def stop_all(self, grace: float = 10.0) -> None:
        """Stop every child and whatever it started; a stop signal meanwhile changes nothing."""
        self._deferring = True
        try:
            _stop_processes([process for _, process in self.running.values()], grace)
            self.running.clear()
        finally:
            self._deferring = False
            self._deferred = None  # we are stopping already


def _stop_processes(processes: list[subprocess.Popen], grace: float) -> None:
    """SIGTERM to each process group, SIGKILL after ``grace`` s to what is left of it.

    The descendants outside the group are listed first and stopped too: a group's signal does
    not reach them, and once their parent has ended they are no longer anyone's descendants.
    """
    descendants = [child for process in processes for child in _outside_its_group(process.pid)]
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    for child in descendants:
        _terminate(child)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
    _, alive = psutil.wait_procs(descendants, timeout=max(0.1, deadline - time.monotonic()))
    for child in alive:
        _kill(child)
    psutil.wait_procs(alive, timeout=5)


def _outside_its_group(pid: int) -> list[psutil.Process]:
    outside = []
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    for child in children:
        try:
            if os.getpgid(child.pid) != pid:
                outside.append(child)
        except ProcessLookupError:
            pass
    return outside


def _terminate(process: psutil.Process) -> None:
    with contextlib.suppress(psutil.Error):
        process.terminate()


def _kill(process: psutil.Process) -> None:
    with contextlib.suppress(psutil.Error):
        process.kill()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
