"""Two ``vigil serve`` replicas on one PostgreSQL store and one var dir, as docker-compose.yml runs
API_REPLICAS of them: a label sent to the replica that did not answer the prediction is taken; a key
made after both started is known to both; a canary's caller lands on the same side on both; wrong
operator tokens sent to both add up to one lockout. Then the same two behind nginx with the
repository's balancer configuration (docker/api-balancer/nginx.conf; skipped without nginx): the
requests are spread over both, and a forged X-Forwarded-For does not escape the lockout.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from monitoring.client_keys import HEADER
from monitoring.serving.routing import CALLER_HEADER, takes_challenger
from monitoring.store.client_keys import create_key
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import Feedback, Release
from tests.api.conftest import OPERATOR_TOKEN, demo_rows, make_settings, train_version, vigil_serve
from tests.conftest import _admin_execute, _database_url

BALANCER_CONF = Path(__file__).resolve().parents[2] / "docker" / "api-balancer" / "nginx.conf"
# Debian installs nginx in /usr/sbin, which a non-login PATH (CI's) does not hold
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
SERVE_ENV = {"VIGIL_ALIAS_POLL_SECONDS": "0.2", "VIGIL_KEY_REFRESH_SECONDS": "0.5",
             "VIGIL_OPERATOR_TOKEN": OPERATOR_TOKEN}
WRONG_TOKEN = {"Authorization": "Bearer not-the-token"}
GUESS = {"version": 1, "reason": "guess", "operator": "mallory"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(postgres_admin_url, postgres_template, mlflow_store, tmp_path_factory):
    """A PostgreSQL store with version 1 as champion and a canary of version 2 on half the callers."""
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.store.engine import dispose_engines

    name = f"vigil_replicas_{int(time.time() * 1000)}"
    _admin_execute(postgres_admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    root = tmp_path_factory.mktemp("replicas")
    settings = make_settings(_database_url(postgres_admin_url, name), mlflow_store, root / "var",
                             open_access=False)
    train_version(settings, seed=0)
    train_version(settings, seed=1, promote=False)
    Registry(settings).set_alias(settings.model_name, "challenger", 2)
    now = utcnow()
    with session_scope(settings.database_url) as session:
        release = Release(model_name=settings.model_name, mode="canary", challenger_version=2, champion_version=1,
                          share=0.5, state="running", started_at=now, started_by="test",
                          bake_until=now + timedelta(hours=1), updated_at=now)
        session.add(release)
        session.flush()
        release_id = release.id
    yield settings, release_id
    dispose_engines()
    _admin_execute(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def replicas(store, tmp_path_factory) -> Iterator[list[str]]:
    """Two replicas (one worker each: starting more is slow on 2 cores), sharing the store and the var
    dir; their base URLs."""
    settings, _ = store
    logs = tmp_path_factory.mktemp("replica-logs")
    servers = [vigil_serve(settings, logs / f"replica-{i}.log", **SERVE_ENV) for i in (1, 2)]
    with ThreadPoolExecutor(len(servers)) as pool:
        started = [pool.submit(server.__enter__) for server in servers]  # both start at once, and stop
        running = [server for server, future in zip(servers, started, strict=True) if future.exception() is None]
        try:
            bases = [future.result()[1] for future in started]
            for base in bases:
                _wait_for(lambda b=base: _challenger_loaded(b))
            yield bases
        finally:
            list(pool.map(lambda server: server.__exit__(None, None, None), running))


def _wait_for(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return found


def _challenger_loaded(base: str) -> bool:
    lines = httpx.get(f"{base}/metrics", timeout=5).text.splitlines()
    return any(line.startswith("vigil_challenger_version{") and line.endswith(" 2.0") for line in lines)


def _key(settings, name: str, bases: list[str]) -> dict[str, str]:
    """A key made now, in the store only; returned once every replica takes it."""
    _, text = create_key(settings.database_url, name=name, scopes=["predict", "feedback"], actor="test",
                         channel="cli")
    headers = {HEADER: text}
    for base in bases:
        _wait_for(lambda b=base: httpx.post(f"{b}/predict", json=demo_rows(1)[0], headers=headers,
                                            timeout=10).status_code == 200, timeout=10)
    return headers


def test_a_label_is_taken_by_the_replica_that_did_not_answer_the_prediction(store, replicas):
    settings, _ = store
    one, two = replicas
    key = _key(settings, "shop", replicas)
    rows = demo_rows(20)
    for answering, labelling in ((one, two), (two, one)):
        answered = httpx.post(f"{answering}/predict", json=rows, headers=key, timeout=10)
        assert answered.status_code == 200, answered.text
        ids = [p["prediction_id"] for p in answered.json()["predictions"]]
        # at once: the answering replica's log may not have written the rows yet; the other waits for them
        labelled = httpx.post(f"{labelling}/feedback", json=[{"prediction_id": pid, "label": 1} for pid in ids],
                              headers=key, timeout=30)
        assert labelled.status_code == 200, labelled.text
        assert labelled.json()["received"] == 20
        again = httpx.post(f"{answering}/feedback", json={"prediction_id": ids[0], "label": 0}, headers=key,
                           timeout=30)
        assert again.status_code == 409  # the first label stands, whichever replica took it
        with session_scope(settings.database_url) as session:
            stored = session.scalars(select(Feedback).where(Feedback.prediction_id.in_(ids))).all()
            assert sorted(f.prediction_id for f in stored) == sorted(ids)
            assert {f.label for f in stored} == {"1"}


def test_a_canary_caller_lands_on_the_same_side_on_every_replica(store, replicas):
    settings, release_id = store
    key = _key(settings, "app", replicas)
    row = demo_rows(1)[0]
    sides: dict[str, set[str]] = {}
    callers = [f"user-{i}" for i in range(24)]
    for caller in callers:
        for base in replicas:
            answer = httpx.post(f"{base}/predict", json=row, headers={**key, CALLER_HEADER: caller},
                                timeout=10).json()
            sides.setdefault(caller, set()).add(f"{answer['role']}:{answer['model_version']}")
    expected = {c: {"canary:2" if takes_challenger(release_id, 0.5, c) else "champion:1"} for c in callers}
    assert sides == expected
    assert 4 <= sum("canary:2" in s for s in sides.values()) <= 20  # 12 expected


def test_wrong_operator_tokens_sent_to_both_replicas_add_up_to_one_lockout(replicas):
    one, two = replicas
    codes = [httpx.post(f"{base}/operator/promote", json=GUESS, headers=WRONG_TOKEN, timeout=10).status_code
             for base in (one, two, one, two, one)]
    assert codes == [403] * 5
    for base in replicas:
        locked = httpx.post(f"{base}/operator/promote", json=GUESS, headers=WRONG_TOKEN, timeout=10)
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def balancer_config(replica_ports: list[int], listen: int, folder: Path) -> Path:
    """The repository's nginx.conf with loopback addresses for compose's names: no Docker DNS
    (the `resolver` and `resolve`), one upstream server line per replica, a free port to listen on."""
    text = BALANCER_CONF.read_text()
    text, resolvers = re.subn(r"^\s*resolver [^;]*;\n", "", text, flags=re.MULTILINE)
    text, servers = re.subn(r"^(\s*)server api:8000 resolve([^;]*);", lambda m: "\n".join(
        f"{m.group(1)}server 127.0.0.1:{port}{m.group(2)};" for port in replica_ports), text, flags=re.MULTILINE)
    text, listens = re.subn(r"^(\s*)listen 8000;", rf"\g<1>listen 127.0.0.1:{listen};", text, flags=re.MULTILINE)
    text, pids = re.subn(r"^pid [^;]*;", f"pid {folder / 'nginx.pid'};", text, flags=re.MULTILINE)
    assert (resolvers, servers, listens, pids) == (1, 1, 1, 1), "nginx.conf no longer has the lines replaced here"
    path = folder / "nginx.conf"
    path.write_text(text)
    return path


@contextmanager
def nginx(config: Path, port: int) -> Iterator[str]:
    log = config.with_name("nginx.log")
    with open(log, "wb") as stderr:
        process = subprocess.Popen([NGINX, "-p", str(config.parent), "-c", str(config), "-g", "daemon off;"],
                                   stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not _accepts(port):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(10)


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)")
def test_behind_the_repository_s_nginx_balancer_both_replicas_answer_and_the_lockout_holds(store, replicas,
                                                                                          tmp_path):
    settings, _ = store
    port = _free_port()
    config = balancer_config([int(base.rsplit(":", 1)[1]) for base in replicas], port, tmp_path)
    with nginx(config, port) as balancer:
        key = _key(settings, "balanced", replicas)
        before = [_predictions_counted(base) for base in replicas]
        answers = [httpx.post(f"{balancer}/predict", json=row, headers=key, timeout=10) for row in demo_rows(20)]
        assert [a.status_code for a in answers] == [200] * 20
        ids = [a.json()["prediction_id"] for a in answers]
        labelled = httpx.post(f"{balancer}/feedback", json=[{"prediction_id": pid, "label": 0} for pid in ids],
                              headers=key, timeout=30)
        assert labelled.status_code == 200 and labelled.json()["received"] == 20
        spread = [_wait_for(lambda b=base, n=n: _predictions_counted(b) > n and _predictions_counted(b) - n)
                  for base, n in zip(replicas, before, strict=True)]
        assert sum(spread) >= 20 and min(spread) >= 5, f"not spread over both replicas: {spread}"
        # a client cannot pose as another address: the balancer replaces X-Forwarded-For
        codes = [httpx.post(f"{balancer}/operator/rollback", json={"reason": "guess", "operator": "mallory"},
                            headers={**WRONG_TOKEN, "X-Forwarded-For": f"198.51.100.{i}"}, timeout=10).status_code
                 for i in range(6)]
        assert codes[-1] == 429, codes


def _predictions_counted(base: str) -> int:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("vigil_predictions_total")))
