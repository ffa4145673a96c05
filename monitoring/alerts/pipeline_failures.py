"""Tell the on-call when an Airflow task fails for good, and that it recovered when it succeeds again.

``task_failed`` and ``task_succeeded`` are per-task Airflow callbacks (a DAG-level notifier crashes
under ``dag.test()``, apache/airflow#64649). The alert is keyed by DAG and task, so a task that
keeps failing is one firing alert (one Slack thread), not a message per run. Only the standard
library is imported at module level: DAG files import this while being parsed.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)

ERROR_CHARS = 500


def alert_key(dag_id: str, task_id: str) -> str:
    return f"pipeline:{dag_id}:{task_id}"


def failure_facts(context: Any) -> dict[str, Any]:
    """What the on-call needs to know about a failed task, from the Airflow callback context."""
    ti = context["ti"]
    error = context.get("exception")
    facts = {
        "DAG": ti.dag_id,
        "task": ti.task_id,
        "run": ti.run_id,
        "try": getattr(ti, "try_number", None),
        "data interval": f"{context.get('data_interval_start')} - {context.get('data_interval_end')}",
        "error": f"{type(error).__name__}: {error}"[:ERROR_CHARS] if error is not None else "unknown",
    }
    log_url = getattr(ti, "log_url", None)
    if log_url:
        facts["log"] = log_url
    return facts


def task_failed(context: Any) -> None:
    """Airflow ``on_failure_callback``: raise (or update) the task's alert, announced via the outbox."""
    from monitoring.settings import get_settings
    from monitoring.store.alerts import raise_alert
    from monitoring.store.engine import session_scope

    settings = get_settings()
    facts = failure_facts(context)
    with session_scope(settings.database_url) as session:
        raise_alert(session, key=alert_key(facts["DAG"], facts["task"]), model_name=settings.model_name,
                    kind="pipeline", severity="critical",
                    title=f"Airflow task {facts['DAG']}.{facts['task']} failed",
                    facts=facts, text="The task failed after its retries; Vigil's numbers may be stale.")
    log.error("alerted the on-call: %s.%s failed", facts["DAG"], facts["task"])


def task_succeeded(context: Any) -> None:
    """Airflow ``on_success_callback``: resolve the task's alert if it was firing."""
    from monitoring.settings import get_settings
    from monitoring.store.alerts import resolve_alert
    from monitoring.store.engine import session_scope

    ti = context["ti"]
    with session_scope(get_settings().database_url) as session:
        resolve_alert(session, key=alert_key(ti.dag_id, ti.task_id),
                      facts={"DAG": ti.dag_id, "task": ti.task_id, "run": ti.run_id},
                      text="The task succeeded again.")


def dag_default_args(*, retries: int, retry_delay: timedelta) -> dict[str, Any]:
    """The ``default_args`` every Vigil DAG shares: its retries, and the on-call callbacks per task."""
    return {"retries": retries, "retry_delay": retry_delay,
            "on_failure_callback": task_failed, "on_success_callback": task_succeeded}
