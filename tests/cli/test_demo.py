"""``vigil demo`` and its supervisor as a user stops them: real processes, real signals, real ports.

Whatever stops the demo (Ctrl-C, ``kill``/systemd/``docker stop``, a closed terminal), no process
it started is left running, not even one that left its process group, and its ports are free. A
port already taken is a one-line error naming the port, before anything starts.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.net import free_port

VIGIL = [sys.executable, "-c", "from cli.main import main; main()"]
REPO = Path(__file__).resolve().parents[2]

SUPERVISED = """
import sys, time
from pathlib import Path
from cli.supervisor import Service, StopRequested, Supervisor

port = sys.argv[2]
with Supervisor(Path(sys.argv[1])) as supervisor:
    try:
        supervisor.start(Service("plain", ["sleep", "300"]))
        # a grandchild in a session of its own: its parent's group signal does not reach it
        supervisor.start(Service("parent", ["/bin/sh", "-c", "setsid sleep 301 & sleep 302"]))
        supervisor.start(Service("listener", [sys.executable, "-m", "http.server", "--bind",
                                              "127.0.0.1", port]))
        print("started", flush=True)
        while True:
            time.sleep(0.5)
    except StopRequested as stop:
        print(f"stopping on {stop.signal_name}", flush=True)
print("all stopped", flush=True)
"""


def _lines(process: subprocess.Popen) -> queue.Queue[str]:
    """The process's stdout lines, read by a thread (so waiting for one can time out)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str], text: str, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        assert line, f"the process ended before saying {text!r}:\n{''.join(seen)}"
        seen.append(line)
        if text in line:
            return seen


def _family(pid: int) -> tuple[list[psutil.Process], set[int]]:
    """The process, all its descendants, and the sessions they lead or belong to."""
    root = psutil.Process(pid)
    members = [root, *root.children(recursive=True)]
    sessions = set()
    for member in members:
        with contextlib.suppress(ProcessLookupError):
            sessions.add(os.getsid(member.pid))
    sessions.discard(os.getsid(0))  # the test's own session is not the demo's
    return members, sessions


def _still_running(members: list[psutil.Process], sessions: set[int]) -> list[str]:
    """Members still alive, and any live process in one of the sessions (zombies are gone)."""
    left = {}
    for process in psutil.process_iter(["pid", "status", "cmdline"]):
        try:
            in_session = os.getsid(process.pid) in sessions
        except (ProcessLookupError, PermissionError):
            continue
        if in_session and process.info["status"] != psutil.STATUS_ZOMBIE:
            left[process.pid] = " ".join(process.info["cmdline"] or [])
    for member in members:
        try:
            if member.is_running() and member.status() != psutil.STATUS_ZOMBIE:
                left[member.pid] = " ".join(member.cmdline())
        except psutil.NoSuchProcess:
            pass
    return [f"{pid}: {command}" for pid, command in sorted(left.items())]


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _port_free(port):
        assert time.monotonic() < deadline, f"nothing listens on {port}"
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_the_supervisor_stops_every_child_on_any_stop_signal(tmp_path, signum):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SUPERVISED, str(tmp_path / "logs"), str(port)],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        lines = _lines(process)
        _wait_for(lines, "started", timeout=30)
        _wait_listening(port)
        members, sessions = _family(process.pid)
        assert len(members) >= 5  # itself, sleep, sh + its two sleeps, the listener
        assert any(p.cmdline()[-1:] == ["301"] for p in members[1:])  # the one in its own session

        process.send_signal(signum)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    output = "".join(iter(lines.get, ""))
    assert f"stopping on {signal.Signals(signum).name}" in output and "all stopped" in output
    assert _still_running(members, sessions) == []
    assert _port_free(port)


def _demo_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "VIGIL_VAR_DIR": str(tmp_path / "var"),
            "VIGIL_DATABASE_URL": f"sqlite:///{tmp_path / 'vigil.db'}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "VIGIL_MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts")}


def test_a_taken_port_is_a_one_line_error_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([*VIGIL, "demo", "--no-airflow", "--port", f"dashboard={port}",
                                 "--port", f"api={free_port()}", "--port", f"gradio={free_port()}",
                                 "--port", f"mlflow={free_port()}"],
                                env=_demo_env(tmp_path), cwd=tmp_path, capture_output=True, text=True,
                                timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: port {port} (dashboard) is already in use by process "
                                    f"{os.getpid()} (")
    assert "vigil demo --port dashboard=PORT" in result.stderr
    assert not (tmp_path / "var").exists() and not (tmp_path / "vigil.db").exists()  # nothing started


def test_a_bad_port_option_is_refused(tmp_path):
    result = subprocess.run([*VIGIL, "demo", "--port", "api=99999"], env=_demo_env(tmp_path),
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert "'api=99999': expected NAME=PORT" in result.stderr
    assert not (tmp_path / "var").exists()


@pytest.mark.slow
def test_sigterm_stops_the_whole_demo_and_frees_its_ports(tmp_path):
    ports = {name: free_port() for name in ("api", "gradio", "dashboard", "mlflow")}
    options = [f"--port={name}={port}" for name, port in ports.items()]
    process = subprocess.Popen([*VIGIL, "demo", "--no-airflow", "--no-story", *options],
                               env=_demo_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines = _lines(process)
        _wait_for(lines, "==> running", timeout=420)
        members, sessions = _family(process.pid)
        assert len(sessions) >= 5  # the demo's own and one per service
        assert not any(_port_free(port) for port in ports.values())

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    output = "".join(iter(lines.get, ""))
    assert "==> stopping (SIGTERM)" in output and "all demo processes stopped" in output
    assert _still_running(members, sessions) == []
    assert [name for name, port in ports.items() if not _port_free(port)] == []
