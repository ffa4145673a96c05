"""Running the watchdog: once (``vigil watchdog``, the Airflow DAG) or in a loop (``vigil watch``).

One run evaluates and acts, reminds about alerts still firing after the re-notify interval, and
then delivers the pending Slack messages. Slack is last and separate: a slow or dead Slack delays
messages, it never holds up or undoes an action. The loop stops cleanly on Ctrl-C or SIGTERM,
between runs or after the run in progress.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from monitoring.alerts.delivery import DeliveryReport
from monitoring.alerts.route_delivery import RouteReport, deliver_outbox
from monitoring.alerts.routes import load_routes
from monitoring.runtime import Runtime
from monitoring.store import alerts
from monitoring.store.engine import session_scope, utcnow
from monitoring.watchdog.evaluation import Outcome, evaluate_and_act

log = logging.getLogger(__name__)


def run_once(runtime: Runtime, *, model_name: str | None = None,
             quiet: bool = True) -> list[str]:
    """Evaluate, act, re-notify and deliver once; the lines worth printing (all of them unless quiet).

    The one run of both ``vigil watch`` and the ``vigil_watchdog`` DAG, so they cannot drift
    apart. It judges at the wall clock: two of them at once (a DAG run beside a ``vigil watch``)
    share one clock, and the watchdog's state only moves forward. When the evaluation fails, the
    pending messages (such as the alert about an earlier failed run) are still delivered, then
    the error is raised.
    """
    try:
        outcomes = evaluate_and_act(runtime, model_name=model_name)
    except Exception:
        _notify_despite_failure(runtime)
        raise
    reminded, report, routed = _notify(runtime)
    lines = [str(o) for o in outcomes if not quiet or _noteworthy(o)]
    lines += [str(r) for r in routed if not quiet or r.delivered or r.failed]
    if not quiet:
        if not outcomes:
            lines.append("no model has a champion yet: nothing to watch")
        lines.append(str(report) + (f"; {reminded} reminder(s) for alerts still firing" if reminded else ""))
    elif report.delivered or report.failed:
        lines.append(str(report))
    return lines


def _notify(runtime: Runtime) -> tuple[int, DeliveryReport, list[RouteReport]]:
    """Remind about alerts still firing after the re-notify interval, then deliver the outbox.

    Slack first, then each alert route on its own (``monitoring.alerts.route_delivery``).
    """
    with session_scope(runtime.store_url) as session:
        reminded = alerts.renotify_due(session, now=utcnow(),
                                       interval=timedelta(minutes=runtime.settings.renotify_minutes))
    report, routed = deliver_outbox(runtime.store_url, runtime.settings)
    return reminded, report, routed


def remind_and_deliver(runtime: Runtime) -> list[str]:
    """The notifying half of a run on its own (the fanned-out DAG's last task); its lines."""
    reminded, report, routed = _notify(runtime)
    return [*map(str, routed), str(report) + (f"; {reminded} reminder(s)" if reminded else "")]


def _notify_despite_failure(runtime: Runtime) -> None:
    try:
        _notify(runtime)
    except Exception:  # the store is down too: the evaluation's error is the one to raise
        log.exception("could not deliver the outbox after a failed evaluation")


def run_loop(runtime: Runtime, *, interval: float, model_name: str | None = None,
             say: Callable[[str], None] = print, max_runs: int | None = None,
             started: Callable[[], None] = lambda: None) -> int:
    """Run every ``interval`` seconds until Ctrl-C / SIGTERM (or ``max_runs``); returns the runs done.

    ``started`` is called once the stop signals are handled (from then on Ctrl-C stops cleanly).
    """
    load_routes(runtime.settings.alert_routes_file)  # a bad routes file stops the start, clearly
    stop = threading.Event()
    previous = _handle_stop_signals(stop)
    started()
    runs = 0
    try:
        while not stop.is_set() and (max_runs is None or runs < max_runs):
            started = time.monotonic()
            try:
                for line in run_once(runtime, model_name=model_name):
                    say(line)
            except Exception:  # the store or MLflow is down: say so, keep watching
                log.exception("watchdog run failed; trying again in %.1fs", interval)
            runs += 1
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    finally:
        _restore(previous)
    return runs


def _noteworthy(outcome: Outcome) -> bool:
    return outcome.action != "none" or bool(outcome.notes)


def _handle_stop_signals(stop: threading.Event) -> dict[int, object]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda *_: stop.set())
    return previous


def _restore(previous: dict[int, object]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
