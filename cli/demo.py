"""``vigil demo``: the whole system on one machine, on its embedded defaults, telling its story.

It migrates the store, trains a first champion, starts the API, the Gradio page, the dashboard,
the MLflow UI, Airflow standalone (with ``--executor celery``: its parts and Celery workers on
Redis, ``cli.airflow_processes``) and the watchdog loop, then plays the story with simulated
traffic: healthy traffic (the champion earns a healthy record), a bad version promoted straight
to champion (its offline evaluation was fooled by corrupted labels), the watchdog rolling it back
(told when it happens, read from the store, with the messages Slack would get when it is off);
another such version sent the default way, to a canary, aborted by the watchdog's judge with only
its share of the traffic harmed; a good version promoted by the judge from its canary; then
drifting applicants (an alert, no rollback). It prints the URLs and stops everything on Ctrl-C, SIGTERM or
SIGHUP. A port already taken is a clear error before anything starts.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from cli import airflow_processes
from cli.supervisor import Service, StopRequested, Supervisor
from monitoring.runtime import Runtime
from monitoring.settings import Settings
from monitoring.store.engine import without_password

DEMO_ENV = {
    "VIGIL_WINDOW_MINUTES": "1",  # windows fill the dashboard within minutes
    "VIGIL_MIN_LABELS": "30",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "VIGIL_DASHBOARD_ACCESS": "open",  # the demo's dashboard is readable without a login (127.0.0.1)
    # /predict and /feedback without a client key; the API says so at start and on /health
    "VIGIL_OPEN_ACCESS": "true",
    # the story's canaries reach a verdict within minutes: a quarter of the traffic, half a minute
    # of bake time, and a version up to 10 points worse in error rate still counts as not worse
    "VIGIL_RELEASE_DEFAULT_SHARE": "0.25",
    "VIGIL_RELEASE_BAKE_MINUTES": "0.5",
    "VIGIL_RELEASE_MARGIN": "0.1",
}


ESSENTIAL = {"api", "watchdog"}  # without these there is no story to tell
READY_TIMEOUT = {"airflow": 300.0}
DEFAULT_PORTS = {"api": 8000, "gradio": 7860, "dashboard": 8501, "mlflow": 5000, "airflow": 8080}


@dataclass(frozen=True)
class DemoOptions:
    airflow: bool = True
    story: bool = True
    rate: float = 20.0
    healthy_seconds: float = 90.0
    bad_seconds: float = 120.0
    canary_seconds: float = 240.0  # at most, per canary act: the traffic stops once the judge ends it
    drift_seconds: float = 120.0
    ports: dict[str, int] | None = None
    executor: str = "local"  # "celery": Airflow's parts with Celery workers (cli.airflow_processes)
    celery_workers: int = 2


def _vigil() -> list[str]:
    return [sys.executable, "-m", "cli"]


class PortTaken(ValueError):
    """A port the demo needs is in use: nothing was started."""


def demo_ports(options: DemoOptions) -> dict[str, int]:
    """The port of each service the demo starts (Airflow's only when it runs)."""
    ports = {**DEFAULT_PORTS, **(options.ports or {})}
    if not options.airflow:
        ports.pop("airflow")
    return ports


def check_ports_free(ports: dict[str, int]) -> None:
    """Raise ``PortTaken`` naming the first port (and its holder, when known) that is in use."""
    for name, port in ports.items():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
                raise PortTaken(f"port {port} ({name}) is already in use{_holder(port)}; stop it "
                                f"or give the demo another one: vigil demo --port {name}=PORT") from None


def _holder(port: int) -> str:
    try:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.laddr and connection.laddr.port == port and connection.pid:
                process = psutil.Process(connection.pid)
                return f" by process {process.pid} ({process.name()})"
    except psutil.Error:
        pass  # another user's process: its name is not ours to read
    return ""


def services(settings: Settings, options: DemoOptions, root: Path) -> list[Service]:
    ports = demo_ports(options)
    api = f"http://127.0.0.1:{ports['api']}"
    shared_env = {**DEMO_ENV, "VIGIL_API_URL": api,
                  "VIGIL_DASHBOARD_URL": f"http://127.0.0.1:{ports['dashboard']}"}
    listed = [
        Service("api", [*_vigil(), "serve", "--port", str(ports["api"])], url=f"{api}/docs",
                ready_url=f"{api}/health/ready", env=shared_env),
        Service("watchdog", [*_vigil(), "watch", "--interval", "2"], env=shared_env),
        Service("gradio", [*_vigil(), "gradio", "--port", str(ports["gradio"]), "--api-url", api],
                url=f"http://127.0.0.1:{ports['gradio']}", ready_url=f"http://127.0.0.1:{ports['gradio']}",
                env=shared_env),
        Service("dashboard", [*_vigil(), "dashboard", "--port", str(ports["dashboard"])],
                url=f"http://127.0.0.1:{ports['dashboard']}",
                ready_url=f"http://127.0.0.1:{ports['dashboard']}/_stcore/health", env=shared_env),
        Service("mlflow-ui", [str(Path(sys.executable).parent / "mlflow"), "ui", "--host", "127.0.0.1",
                              "--port", str(ports["mlflow"]), "--workers", "1"],
                url=f"http://127.0.0.1:{ports['mlflow']}", ready_url=f"http://127.0.0.1:{ports['mlflow']}",
                # the store URI may hold a password: from the environment, not argv
                env={**shared_env, "MLFLOW_BACKEND_STORE_URI": settings.mlflow_tracking_uri,
                     # Vigil runs no MLflow server jobs: without this, 7 job worker processes start
                     "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}),
    ]
    if options.airflow:
        airflow_home = (settings.var_dir / "airflow").resolve()
        env = {**shared_env, **airflow_env(airflow_home, root / "dags", ports["airflow"])}
        if options.executor == "celery":
            listed += airflow_processes.services(
                airflow_processes.executor_env(env, executor="celery", **_celery_settings()),
                workers=options.celery_workers)
        else:
            listed.append(Service(
                "airflow", [str(Path(sys.executable).parent / "airflow"), "standalone"],
                url=f"http://127.0.0.1:{ports['airflow']}",
                ready_url=f"http://127.0.0.1:{ports['airflow']}/api/v2/monitor/health", env=env,
            ))
    else:
        listed.append(Service("monitor-loop", ["/bin/sh", "-c",
                                               f"while true; do {' '.join(_vigil())} monitor; sleep 30; done"],
                              env=shared_env))
    return listed


def _celery_settings() -> dict[str, str]:
    """The CeleryExecutor's metadata DB and broker, from Airflow's own variables."""
    return {"metadata_url": os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""),
            "broker_url": os.environ.get("AIRFLOW__CELERY__BROKER_URL", airflow_processes.DEFAULT_BROKER_URL)}


def airflow_env(airflow_home: Path, dags: Path, port: int) -> dict[str, str]:
    """Airflow standalone on SQLite, small on a small machine, no login in the demo."""
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags.resolve()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # the demo unpauses all but training
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",  # every user is an admin in the demo: this machine only
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def run_demo(settings: Settings, options: DemoOptions, say: Callable[[str], None] = print) -> int:
    """Run the demo until a stop signal (0) or an essential service stops (1)."""
    root = Path(__file__).resolve().parent.parent
    ports = demo_ports(options)
    check_ports_free(ports)
    if options.airflow:
        airflow_processes.check_can_run(options.executor, **_celery_settings())
    # the commands the story runs (vigil train) link their messages to this demo's dashboard
    os.environ.update({**DEMO_ENV, "VIGIL_DASHBOARD_URL": f"http://127.0.0.1:{ports['dashboard']}"})
    try:
        with Supervisor(settings.var_dir / "logs") as supervisor:  # stop signals handled from here
            try:
                _first_champion(settings, say)
                return _run_services(settings, options, root, supervisor, say)
            except StopRequested as stop:
                say(f"\n==> stopping ({stop.signal_name})")
                return 0
    finally:
        say("==> all demo processes stopped")


def _first_champion(settings: Settings, say: Callable[[str], None]) -> None:
    """Migrate the store and train a champion unless there is one."""
    from monitoring.store.migrations import upgrade

    say(f"==> store: {without_password(settings.database_url)}   "
        f"MLflow: {without_password(settings.mlflow_tracking_uri)}")
    upgrade(settings.database_url)
    registry = Runtime(settings).registry
    champion = registry.alias_version(settings.model_name, settings.champion_alias)
    if champion is None:
        say("==> training a first champion")
        _vigil_run(["train", "--rows", "20000"], say)
        champion = registry.alias_version(settings.model_name, settings.champion_alias)
    say(f"==> champion: {settings.model_name} version {champion} "
        f"(models:/{settings.model_name}@{settings.champion_alias})")


def _run_services(settings: Settings, options: DemoOptions, root: Path, supervisor: Supervisor,
                  say: Callable[[str], None]) -> int:
    """Start the services, play the story, then watch them until one essential stops (1)."""
    listed = services(settings, options, root)
    if options.airflow and options.executor == "celery":
        say("==> migrating Airflow's metadata DB (airflow db migrate)")
        airflow_processes.migrate(next(s for s in listed if s.name == "airflow").env)
    for service in listed:
        supervisor.start(service)
    for name in list(supervisor.running):
        service = supervisor.running[name][0]
        if not supervisor.wait_ready(name, READY_TIMEOUT.get(name, 180.0)):
            say(f"!! {name} did not come up; last lines of {supervisor.log_dir / (name + '.log')}:")
            say(supervisor.log_tail(name))
            if name in ESSENTIAL:
                return 1
            say(f"!! going on without {name}")
            supervisor.stop(name)
            continue
        if service.url:
            say(f"    {name:<10} {service.url}")
    if "airflow" in supervisor.running:
        threading.Thread(target=_unpause_dags, args=(supervisor.running["airflow"][0].env, say),
                         daemon=True).start()
    say(_login_help(settings))
    stop_narrating = threading.Event()
    try:
        if options.story:
            _start_narrator(settings, supervisor, say, stop_narrating)
            _play_story(settings, options, supervisor, say)
        say("==> running; Ctrl-C (or SIGTERM) stops everything")
        return _watch_services(supervisor, say)
    finally:
        stop_narrating.set()


def _watch_services(supervisor: Supervisor, say: Callable[[str], None]) -> int:
    """Say when a service stops; return 1 once an essential one did."""
    reported: set[str] = set()
    while True:
        for name, code in supervisor.exited():
            if name not in reported:
                reported.add(name)
                say(f"!! {name} stopped (exit code {code}); see {supervisor.log_dir / (name + '.log')}")
                if name in ESSENTIAL:
                    return 1
        time.sleep(2)


def _start_narrator(settings: Settings, supervisor: Supervisor, say: Callable[[str], None],
                    stop: threading.Event) -> None:
    """Tell each rollback (and, Slack off, each message) when it happens (``cli.narration``)."""
    from cli.narration import Narrator

    narrator = Narrator(settings.database_url, settings.model_name, say=say, slack_on=settings.slack_enabled,
                        dashboard_url=supervisor.running["api"][0].env["VIGIL_DASHBOARD_URL"])
    threading.Thread(target=narrator.run, args=(stop,), name="vigil-demo-narrator", daemon=True).start()


# Training stays paused: a scheduled retrain in the middle of the story would change the champion.
UNPAUSED_DAGS = ("vigil_monitoring", "vigil_watchdog", "vigil_batch_scoring", "vigil_maintenance")


def _unpause_dags(airflow_env: dict[str, str], say: Callable[[str], None], timeout: float = 300.0) -> None:
    """Unpause the demo's DAGs once Airflow has parsed them."""
    import subprocess

    airflow = str(Path(sys.executable).parent / "airflow")
    waiting = list(UNPAUSED_DAGS)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for dag_id in list(waiting):
            result = subprocess.run([airflow, "dags", "unpause", dag_id], env={**os.environ, **airflow_env},
                                    capture_output=True, text=True, check=False)
            if result.returncode == 0:
                waiting.remove(dag_id)
        if waiting:
            time.sleep(10)
    if waiting:
        say(f"!! could not unpause {', '.join(waiting)} in Airflow; unpause them in its UI")
    else:
        say(f"    airflow: unpaused {', '.join(UNPAUSED_DAGS)} (vigil_training stays paused: trigger it in the UI)")


def _login_help(settings: Settings) -> str:
    token = "set VIGIL_OPERATOR_TOKEN to act" if settings.operator_token is None else "VIGIL_OPERATOR_TOKEN"
    slack = "on" if settings.slack_enabled else "off (set VIGIL_SLACK_BOT_TOKEN or VIGIL_SLACK_WEBHOOK_URL)"
    return (f"==> OPEN ACCESS: the demo's API takes predictions and labels without a client key "
            f"(VIGIL_OPEN_ACCESS=true; elsewhere clients need `vigil keys create NAME --scope predict`)\n"
            f"==> dashboard: reading is open in the demo (VIGIL_DASHBOARD_ACCESS=open), operator login: {token}; Airflow: no login in the demo (all users are admins); "
            f"Slack: {slack}")


def _vigil_run(args: list[str], say: Callable[[str], None]) -> None:
    import subprocess

    result = subprocess.run([*_vigil(), *args], capture_output=True, text=True, check=False)
    for line in (result.stdout + result.stderr).splitlines():
        if line.strip() and "WARNING" not in line:
            say(f"    {line}")
    if result.returncode != 0:
        raise RuntimeError(f"vigil {' '.join(args)} failed")


def _play_story(settings: Settings, options: DemoOptions, supervisor: Supervisor,
                say: Callable[[str], None]) -> None:
    from cli.simulate import simulate

    api = supervisor.running["api"][0].env["VIGIL_API_URL"]

    def progress(line: str) -> None:
        say(f"    traffic: {line}")

    say(f"==> act 1: healthy traffic for {options.healthy_seconds:.0f}s (the champion earns a healthy record)")
    simulate(api, scenario="healthy", rate=options.rate, duration=options.healthy_seconds, seed=1,
             progress=progress)
    say("==> act 2: a new version trained on corrupted labels looks better offline and is promoted straight to champion")
    _vigil_run(["train", "--bad", "--seed", "7", "--rows", "20000", "--to", "champion"], say)
    say(f"==> watching the watchdog: healthy traffic for {options.bad_seconds:.0f}s (the rollback is told "
        "when it happens)")
    report = simulate(api, scenario="healthy", rate=options.rate, duration=options.bad_seconds, seed=2,
                      progress=progress)
    say(f"    act 2 done: the API serves version {_serving_version(api)}; versions seen: {report.versions}")
    _canary_act(settings, api, options, say, progress, seed=4, train=["--bad", "--seed", "8"],
                title="==> act 3: another version trained on corrupted labels, sent the default way: to a "
                      "canary that answers a share of the requests, judged by the watchdog")
    _canary_act(settings, api, options, say, progress, seed=5, train=["--seed", "11", "--promote", "--to", "canary"],
                title="==> act 4: a good version sent to a canary; the judge promotes it once it is shown "
                      "not worse than the champion")
    say(f"==> act 5: applicants drift for {options.drift_seconds:.0f}s (drift alerts; no rollback)")
    simulate(api, scenario="covariate_drift", rate=options.rate, duration=options.drift_seconds, seed=3,
             progress=progress)
    say("==> story done: see the dashboard's Overview, Incidents, Release, Registry (audit trail) and Alerts pages")


def _canary_act(settings: Settings, api: str, options: DemoOptions, say: Callable[[str], None],
                progress: Callable[[str], None], *, seed: int, train: list[str], title: str) -> None:
    """Train a version into a canary, send traffic until the judge ends it, and say how it ended."""
    from cli.simulate import simulate

    say(title)
    before = _newest_release(settings)
    _vigil_run(["train", "--rows", "20000", *train], say)
    release = _newest_release(settings)
    if release is None or (before is not None and release.id == before.id):
        say("    no canary was started (see the line above)")
        return
    report = simulate(api, scenario="healthy", rate=options.rate, duration=options.canary_seconds, seed=seed,
                      progress=progress, until=lambda: _newest_release(settings).state != "running")
    ended, version = _newest_release(settings), release.challenger_version
    answered = report.versions.get(version, 0)
    share = f"{answered / report.answered:.0%}" if report.answered else "none"
    if ended.state == "running":
        say(f"    release {ended.id} is still running after {options.canary_seconds:.0f}s: "
            f"{ended.verdict_reason or 'no verdict yet'} (vigil canary status)")
    else:
        seconds = (ended.ended_at - ended.started_at).total_seconds()
        say(f"    release {ended.id}: version {version} {ended.state} by the {ended.ended_by} {seconds:.0f}s after "
            f"its canary started: {ended.verdict_reason}")
    say(f"    version {version} answered {answered} of {report.answered} requests ({share}), "
        f"{report.wrong.get(version, 0)} of its labelled answers wrong; the API serves version "
        f"{_serving_version(api)}")


def _newest_release(settings: Settings):
    from monitoring.store.engine import session_scope
    from monitoring.store.releases import releases

    with session_scope(settings.database_url) as session:
        found = releases(session, settings.model_name, limit=1)
        if found:
            session.expunge(found[0])
        return found[0] if found else None


def _serving_version(api: str) -> int | None:
    try:
        return httpx.get(f"{api}/model", timeout=5).json().get("version")
    except (httpx.HTTPError, ValueError):
        return None

