"""Real processes for the fault runs: an ``mlflow server``, a private PostgreSQL cluster, ``vigil
serve`` and ``vigil watch``, and a traffic sender that remembers every prediction it was given.

Each process runs in a session of its own, so a fault (SIGKILL, SIGSTOP) reaches it and its
children and nothing else. The private PostgreSQL is made with ``initdb`` in a temp folder, on
a port of its own, run as the ``postgres`` user: the machine's shared PostgreSQL is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.net import free_port

BIN = Path(sys.executable).parent
POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def wait_for(check: Callable[[], bool], *, what: str, timeout: float, every: float = 0.2,
             explain: Callable[[], object] | None = None) -> float:
    """Seconds until ``check()`` is true; fails after ``timeout``, with ``explain()`` if given."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            said = f" ({explain()})" if explain else ""
            raise TimeoutError(f"{what}: not within {timeout:.0f} s{said}")
        time.sleep(every)
    return time.monotonic() - started


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class Service:
    """One command in a session of its own, its output in a log file."""

    def __init__(self, name: str, command: list[str], log: Path, env: dict[str, str] | None = None):
        self.name, self.command, self.log_path, self.env = name, command, log, env
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def signal(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.process.wait()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


class MlflowServer(Service):
    """``mlflow server`` on a SQLite backend in ``root``; killed and started again on its port."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        super().__init__("mlflow", [
            str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--default-artifact-root", str(root / "artifacts")], root / "mlflow.log",
            {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
             "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_and_wait(self, timeout: float = 300) -> float:
        self.start()
        return wait_for(lambda: answers(f"{self.url}/health") or not self._alive_or_fail(),
                        what="mlflow server", timeout=timeout, every=0.5)

    def _alive_or_fail(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"mlflow server exited:\n{self.tail()}")
        return True


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on its own port, stopped and started at will."""

    def __init__(self):
        if not POSTGRES_BIN:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        # a folder of its own: the postgres user cannot enter a root-only temp folder
        self.bin, self.root, self.port = POSTGRES_BIN[-1], Path(tempfile.mkdtemp(prefix="vigil-pg-")), free_port()
        shutil.chown(self.root, "postgres")
        self._as_postgres(f"{self.bin / 'initdb'} -D {self.root / 'data'} -A trust -U postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._as_postgres(f"{self.bin / 'pg_ctl'} -D {self.root / 'data'} -l {self.root / 'log'} -w "
                          f"-o '-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1' start")

    def stop(self) -> None:
        self._as_postgres(f"{self.bin / 'pg_ctl'} -D {self.root / 'data'} -m fast -w stop")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _as_postgres(self, command: str) -> None:
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", command + " >/dev/null"], check=True,
                       timeout=120)


@dataclass
class Traffic:
    """Predictions sent at ``rate`` per second from a thread; every answer and failure is kept."""

    base_url: str
    rows: list[dict]
    rate: float = 20.0
    answered: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, id)
    failed: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, why)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fault-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def between(self, start: float, end: float) -> tuple[int, int]:
        """Predictions answered and failed in [start, end] (monotonic seconds)."""
        return (sum(start <= t <= end for t, _ in self.answered),
                sum(start <= t <= end for t, _ in self.failed))

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            i = 0
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post("/predict", json=self.rows[i % len(self.rows)])
                    if response.status_code == 200:
                        self.answered.append((sent, response.json()["prediction_id"]))
                    else:
                        self.failed.append((sent, f"HTTP {response.status_code}"))
                except httpx.HTTPError as error:
                    self.failed.append((sent, type(error).__name__))
                i += 1
                self._stop.wait(max(0.0, 1 / self.rate - (time.monotonic() - sent)))
