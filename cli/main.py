"""The ``vigil`` command line: one entry point for operators, scripts, the Makefile and Airflow.

Each command parses its options, calls one function of ``monitoring`` and prints the outcome.
Errors a user can fix (bad input, a version that does not exist) end with a one-line message
and exit code 2; nothing is half-written.
"""

from __future__ import annotations

import getpass
import importlib.util
import os
import shutil
import socket
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from cli.alert_commands import alerts_group
from cli.keys import keys as keys_group
from cli.policy_commands import policy_group
from cli.release_commands import canary_group, shadow_group
from cli.store_commands import db_roles
from monitoring.runtime import Runtime
from monitoring.settings import get_settings


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "cli:unknown"


def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can fix into a clear message and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pydantic import ValidationError

        from monitoring.registry.mlflow_registry import RegistryError
        from monitoring.registry.promotion import PromotionError
        from monitoring.settings import explain
        from monitoring.training.datasets import DataError

        try:
            return func(*args, **kwargs)
        except ValidationError as error:
            click.echo(f"error: {explain(error)}", err=True)
            sys.exit(2)
        except (DataError, PromotionError, RegistryError, ValueError) as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)

    return wrapper


def _progress(message: str) -> None:
    click.echo(f"  ... {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Vigil: keep models in production healthy, and take a bad one back before it hurts anyone."""


main.add_command(alerts_group)
main.add_command(canary_group)
main.add_command(shadow_group)
main.add_command(policy_group)


@main.group()
def db() -> None:
    """Vigil's own store."""


db.add_command(db_roles)


@db.command("upgrade")
@_user_errors
def db_upgrade() -> None:
    """Create or update Vigil's tables (safe to run again)."""
    from monitoring.store.migrations import head_revision, upgrade

    settings = get_settings()
    revision = upgrade(settings.database_url)
    click.echo(f"store at revision {revision} (head {head_revision()})")


@main.command()
@click.option("--data", "data_path", default=None, help="a CSV file of your own (default: the demo generator)")
@click.option("--target", default=None, help="target column of --data")
@click.option("--rows", default=20_000, show_default=True, help="demo rows to generate")
@click.option("--seed", default=0, show_default=True)
@click.option("--bad", is_flag=True, help="demo only: train on corrupted labels (a deliberately bad model)")
@click.option("--model-name", default=None, help="registered model name (default: VIGIL_MODEL_NAME)")
@click.option("--promote/--no-promote", default=None,
              help="force or forbid promotion (default: only if it beats the champion); --promote "
                   "alone moves @champion at once")
@click.option("--to", "to", type=click.Choice(["canary", "champion", "none"]), default=None,
              help="where a version that beats the champion goes (default VIGIL_NEW_VERSION, canary; "
                   "champion with --promote)")
@_user_errors
def train(data_path, target, rows, seed, bad, model_name, promote, to) -> None:
    """Train a version, register it in MLflow, and if it beats the champion send it to a canary
    release (or to @champion: --to, VIGIL_NEW_VERSION); a first version becomes champion."""
    from monitoring.training import datasets
    from monitoring.training.trainer import train as run_training

    runtime = Runtime.from_environment()
    settings = runtime.settings
    if promote is False and to not in (None, "none"):
        raise ValueError(f"--no-promote and --to {to} contradict each other: give one of them")
    if promote and to == "none":
        raise ValueError("--promote and --to none contradict each other: give one of them")
    to = to or ("champion" if promote else settings.new_version)
    if data_path:
        if not target:
            raise datasets.DataError("--target is required with --data")
        if bad:
            raise datasets.DataError("--bad applies to the demo generator only")
        _progress(f"reading {data_path}")
        dataset, origin = datasets.load_csv(data_path, target), data_path
    else:
        _progress(f"generating {rows:,} demo rows (seed {seed}{', corrupted labels' if bad else ''})")
        dataset = datasets.bad_training_set(rows, seed) if bad else datasets.generate(rows, seed)
        origin = "demo-bad" if bad else "demo"
    result = run_training(
        dataset, registry=runtime.registry, store_url=runtime.store_url,
        model_name=model_name or settings.model_name, actor=_actor(), promote=promote, to=to, seed=seed,
        data_origin=origin, progress=_progress,
    )
    state = {"champion": f"now @{settings.champion_alias}", "canary": f"in canary release {result.release_id}",
             "none": "not promoted"}[result.destination]
    click.echo(f"{result.model_name} version {result.version}: {result.primary_metric}="
               f"{result.metrics[result.primary_metric]:.4f}, {state} ({result.reason})")


@main.command()
@click.argument("version", type=int)
@click.option("--reason", required=True, help="why (recorded in the audit trail)")
@click.option("--model-name", default=None)
@_user_errors
def promote(version, reason, model_name) -> None:
    """Make VERSION the champion."""
    from monitoring.registry.promotion import promote as do_promote

    settings = get_settings()
    name = model_name or settings.model_name
    event = do_promote(Runtime(settings), model_name=name, version=version,
                       actor=_actor(), reason=reason)
    click.echo(f"{name}: @{settings.champion_alias} moved from version {event.from_version} to {event.to_version}")


@main.command()
@click.option("--to", "to_version", type=int, default=None,
              help="version to restore (default: the most recent former champion not marked bad)")
@click.option("--reason", required=True, help="why (recorded in the audit trail)")
@click.option("--model-name", default=None)
@_user_errors
def rollback(to_version, reason, model_name) -> None:
    """Give the champion alias back to a former champion."""
    from monitoring.registry.promotion import rollback as do_rollback

    settings = get_settings()
    name = model_name or settings.model_name
    event = do_rollback(Runtime(settings), model_name=name, actor=_actor(),
                        reason=reason, to_version=to_version)
    click.echo(f"{name}: @{settings.champion_alias} rolled back from version {event.from_version} "
               f"to {event.to_version}")


@main.command()
@click.argument("name")
@click.option("--reference", "reference", type=click.Path(path_type=Path), default=None,
              help="CSV or Parquet file of inputs to measure drift against (default: the dataset "
                   "logged with the version's run, else its first healthy production window)")
@_user_errors
def adopt(name, reference) -> None:
    """Start watching NAME, a registered model Vigil did not train (its @champion as it is)."""
    from monitoring.registry.adoption import adopt as do_adopt

    adoption = do_adopt(Runtime.from_environment(), model_name=name, actor=_actor(),
                        reference=reference)
    click.echo(str(adoption))


@main.command()
@click.option("--model-name", default=None)
@_user_errors
def versions(model_name) -> None:
    """List registered versions with their metrics, aliases and health."""
    from monitoring.store import history

    settings = get_settings()
    name = model_name or settings.model_name
    runtime = Runtime(settings)
    health = history.health_states(runtime.store_url, name)
    infos = runtime.registry.list_versions(name)
    if not infos:
        raise ValueError(f"no registered model named {name!r}")
    for info in infos:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(info.metrics.items()) if k in {"accuracy", "f1", "roc_auc", "rmse", "mae"})
        aliases = " ".join(f"@{a}" for a in info.aliases)
        click.echo(f"v{info.version:<4} {health.get(info.version, 'unknown'):<9} {aliases:<12} {metrics}")


@main.command()
@click.option("--dry-run", is_flag=True, help="count what is due and change nothing")
@_user_errors
def prune(dry_run) -> None:
    """Delete what is older than its retention (VIGIL_RETENTION_*), and say what went per kind."""
    from monitoring.retention.prune import prune as run_prune

    settings = get_settings()
    report = run_prune(settings.database_url, settings, dry_run=dry_run)
    for line in report.lines():
        click.echo(line)


@main.command()
@click.option("--start", default=None, help="backfill from this UTC time (ISO 8601); with --end")
@click.option("--end", default=None, help="backfill up to this UTC time (ISO 8601)")
@click.option("--model-name", default=None, help="default: every model Vigil registered")
@_user_errors
def monitor(start, end, model_name) -> None:
    """Compute the latest closed monitoring window once (or backfill the windows ending in --start..--end)."""
    from datetime import UTC, datetime

    from monitoring.metrics.window_pipeline import compute_windows
    from monitoring.metrics.windows import latest_closed_window
    from monitoring.store.engine import utcnow

    def utc(text: str) -> datetime:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    settings = get_settings()
    if (start is None) != (end is None):
        raise ValueError("--start and --end go together")
    if start is None:
        latest = latest_closed_window(utcnow(), settings.window_minutes)
        start_at, end_at = latest.start, latest.end
    else:
        start_at, end_at = utc(start), utc(end)
    summary = compute_windows(Runtime(settings), model_name=model_name,
                              start=start_at, end=end_at)
    click.echo(f"{len(summary.windows)} window(s) from {start_at.isoformat()} to {end_at.isoformat()}: "
               f"{len(summary.served)} version-window(s) served, {summary.metric_rows} metric rows, "
               f"{summary.drift_rows} drift rows, {len(summary.refreshed)} window(s) refreshed by late feedback")
    for note in summary.notes:
        _progress(note)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="uvicorn worker processes")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="one log line per request (Prometheus /metrics counts them either way)")
@click.option("--migrate/--no-migrate", default=True, show_default=True,
              help="bring the store's schema to head first, when the store answers "
                   "(off where a migrate job does it, as in docker-compose)")
@_user_errors
def serve(host, port, workers, access_log, migrate) -> None:
    """Serve the champion over HTTP (FastAPI; docs at /docs).

    VIGIL_SERVED_MODELS=a,b serves those models too, each at POST /predict/<name>.

    A store that is down does not stop it: predictions are buffered until the store is back.
    A store whose schema is behind does: run `vigil db upgrade` (or leave --migrate on).
    """
    import uvicorn

    from monitoring.store.engine import is_reachable
    from monitoring.store.migrations import SchemaNotCurrent, check_schema, upgrade

    settings = get_settings()
    if not is_reachable(settings.database_url):
        click.echo("warning: the store is unreachable; serving anyway (predictions are buffered "
                   "until it answers)", err=True)
    else:
        if migrate:
            upgrade(settings.database_url)  # once, before the workers start
        try:
            check_schema(settings.database_url)
        except SchemaNotCurrent as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # One /metrics for all workers: prometheus_client's multiprocess files, fresh for this server.
        # One folder per server (host name and port): replicas sharing a var dir (a compose volume)
        # neither empty nor count each other's files.
        directory = settings.var_dir / "prometheus-multiproc" / f"{socket.gethostname()}-{port}"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, workers=workers,
                access_log=access_log)


@main.command()
@click.option("--scenario", type=click.Choice(["healthy", "covariate_drift", "concept_drift"]),
              default="healthy", show_default=True)
@click.option("--rate", default=20.0, show_default=True, help="predictions per second")
@click.option("--duration", default=60.0, show_default=True, help="seconds")
@click.option("--label-delay", default=2.0, show_default=True, help="seconds until the true outcome is sent")
@click.option("--label-share", default=1.0, show_default=True, help="share of predictions that get a label")
@click.option("--seed", default=0, show_default=True)
@click.option("--api-url", default=None, help="default: VIGIL_API_URL")
@_user_errors
def simulate(scenario, rate, duration, label_delay, label_share, seed, api_url) -> None:
    """Send realistic traffic and (later) its true outcomes to the API."""
    from cli.simulate import simulate as run_simulation

    settings = get_settings()
    url = api_url or settings.api_url
    key = settings.client_key.get_secret_value() if settings.client_key else None
    click.echo(f"sending {scenario} traffic to {url} at {rate}/s for {duration:.0f}s "
               f"({'with the client key in VIGIL_CLIENT_KEY' if key else 'without a client key: open access only'})")
    report = run_simulation(url, scenario=scenario, rate=rate, duration=duration, label_delay=label_delay,
                            label_share=label_share, seed=seed, progress=_progress, key=key)
    click.echo(report.line())
    if report.answered == 0:
        click.echo(f"error: the API answered no prediction ({report.last_error})", err=True)
        sys.exit(1)


def _dashboard_entry() -> Path:
    """The dashboard's Streamlit script, found by module name: the launcher does not import adapters."""
    spec = importlib.util.find_spec("app.dashboard")
    if spec is None or not spec.submodule_search_locations:
        raise click.ClickException("the dashboard package (app.dashboard) is not installed")
    return Path(spec.submodule_search_locations[0]) / "main.py"


@main.command()
@click.option("--port", default=8501, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True, help="interface to listen on")
def dashboard(port, address) -> None:
    """Run the Streamlit dashboard (headless, no usage statistics)."""
    import os

    command = [sys.executable, "-m", "streamlit", "run", str(_dashboard_entry()), "--server.headless=true",
               f"--server.port={port}", f"--server.address={address}",
               "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"]
    click.echo(f"dashboard on http://{address}:{port}", err=True)
    os.execv(sys.executable, command)  # streamlit takes this process over: signals reach it directly


def _demo_ports(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, int]:
    from cli.demo import DEFAULT_PORTS

    ports = {}
    for value in values:
        name, _, port = value.partition("=")
        if name not in DEFAULT_PORTS or not port.isdigit() or not 0 < int(port) < 65536:
            raise click.BadParameter(f"{value!r}: expected NAME=PORT with NAME one of "
                                     f"{', '.join(DEFAULT_PORTS)} and PORT in 1..65535")
        ports[name] = int(port)
    return ports


@main.command()
@click.option("--airflow/--no-airflow", default=True, show_default=True,
              help="run Airflow standalone (off: a plain loop computes the monitoring windows)")
@click.option("--story/--no-story", default=True, show_default=True,
              help="play healthy traffic, a bad promotion and its rollback, then drift")
@click.option("--rate", default=20.0, show_default=True, help="simulated predictions per second")
@click.option("--port", "ports", multiple=True, metavar="NAME=PORT", callback=_demo_ports,
              help="another port for a service (api, gradio, dashboard, mlflow, airflow); repeatable")
@click.option("--executor", type=click.Choice(["local", "celery"]), default="local", show_default=True,
              help="Airflow's executor. celery: api-server, scheduler, dag-processor and Celery workers on Redis "
                   "(AIRFLOW__CELERY__BROKER_URL, default redis://127.0.0.1:6379/0); needs the celery extra and "
                   "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN on PostgreSQL")
@click.option("--celery-workers", default=2, show_default=True, type=click.IntRange(1, 16),
              help="Celery workers to start with --executor celery (one task at a time each)")
@_user_errors
def demo(airflow, story, rate, ports, executor, celery_workers) -> None:
    """Run the whole system on this machine (embedded defaults) and tell its story.

    Ctrl-C, SIGTERM and SIGHUP stop every process it started.
    """
    from cli.demo import DemoOptions, run_demo

    options = DemoOptions(airflow=airflow, story=story, rate=rate, ports=ports, executor=executor,
                          celery_workers=celery_workers)
    sys.exit(run_demo(get_settings(), options, say=click.echo))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to listen on")
@click.option("--port", default=7860, show_default=True, type=int)
@click.option("--api-url", default=None, help="the prediction API it calls (default: VIGIL_API_URL)")
@_user_errors
def gradio(host, port, api_url) -> None:
    """Run the Gradio page for end users (it asks the prediction API over HTTP)."""
    import os

    url = api_url or get_settings().api_url
    command = [sys.executable, "-m", "app.gradio_page", "--host", host, "--port", str(port), "--api-url", url]
    os.execv(sys.executable, command)  # the page takes this process over: signals reach it directly


@main.command()
@click.option("--model-name", default=None, help="default: every model with a champion")
@_user_errors
def watchdog(model_name) -> None:
    """Evaluate every champion once, act (roll back, alert), then deliver pending Slack messages."""
    from monitoring.watchdog.loop import run_once

    settings = get_settings()
    for line in run_once(Runtime(settings), model_name=model_name, quiet=False):
        click.echo(line)


@main.command()
@click.option("--interval", default=2.0, show_default=True, type=click.FloatRange(min=0.1),
              help="seconds between evaluations")
@click.option("--model-name", default=None, help="default: every model with a champion")
@_user_errors
def watch(interval, model_name) -> None:
    """Run the watchdog in a loop for near-real-time protection (Ctrl-C stops it)."""
    runs = 0
    try:
        from monitoring.registry.mlflow_registry import Registry
        from monitoring.watchdog.loop import run_loop

        settings = get_settings()
        # MLflow's client is made (and imported) before "watching" is said, not in the first run
        runtime = Runtime(settings, Registry(settings))
        runs = run_loop(runtime, interval=interval, model_name=model_name,
                        say=click.echo, started=lambda: click.echo(
                            f"watching {model_name or 'every model with a champion'} every {interval:g}s "
                            "(Ctrl-C stops)", err=True))
    except KeyboardInterrupt:  # Ctrl-C before the loop took over the signal
        pass
    click.echo(f"watchdog stopped after {runs} evaluation(s)", err=True)


@main.command("watchdog-health")
@click.option("--any-host", is_flag=True,
              help="judge the newest run of any watchdog (default: the watchdogs on this host)")
@click.option("--stale-seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="default: VIGIL_WATCHDOG_STALE_SECONDS")
@_user_errors
def watchdog_health(any_host, stale_seconds) -> None:
    """Exit 0 if a watchdog run ended within the stale threshold, 1 if not (a health check)."""
    from monitoring.watchdog.heartbeat import read_freshness, this_host

    settings = get_settings()
    threshold = stale_seconds or settings.reliability.watchdog_stale_seconds
    try:
        found = read_freshness(settings.database_url, threshold,
                               host=None if any_host else this_host())
    except Exception as error:  # noqa: BLE001 - a store that does not answer is unhealthy too
        click.echo(f"unhealthy: cannot read the watchdog's heartbeat ({type(error).__name__})", err=True)
        sys.exit(1)
    if found.stale:
        click.echo(f"unhealthy: {found.describe()}", err=True)
        sys.exit(1)
    click.echo(f"healthy: {found.describe()}")


@main.command()
@click.option("--reason", required=True, help="why (recorded in the audit trail)")
@click.option("--model-name", default=None)
@_user_errors
def freeze(reason, model_name) -> None:
    """Stop automatic rollbacks of a model until an operator releases it."""
    from monitoring.watchdog.evaluation import freeze as do_freeze

    settings = get_settings()
    name = model_name or settings.model_name
    do_freeze(settings.database_url, name, _actor(), reason)
    click.echo(f"{name}: automatic rollbacks frozen")


@main.command()
@click.option("--reason", required=True, help="why (recorded in the audit trail)")
@click.option("--model-name", default=None)
@_user_errors
def release(reason, model_name) -> None:
    """Allow automatic rollbacks of a model again (the day's budget starts over)."""
    from monitoring.watchdog.evaluation import release as do_release

    settings = get_settings()
    name = model_name or settings.model_name
    do_release(settings.database_url, name, _actor(), reason)
    click.echo(f"{name}: automatic rollbacks released")


main.add_command(keys_group)
