"""Vigil watchdog: every minute, what ``vigil watch`` does in each of its runs.

Evaluate each champion and act (roll back, alert) in one locked step, remind about alerts still
firing, and deliver the Slack outbox: an Airflow-only deployment needs no other process.
"""

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag, task

from monitoring.alerts.pipeline_failures import dag_default_args


@dag(
    dag_id="vigil_watchdog",
    schedule=CronDataIntervalTimetable("* * * * *", timezone="UTC"),  # runs carry [start, end)
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["vigil"],
    default_args=dag_default_args(retries=1, retry_delay=timedelta(seconds=15)),
)
def vigil_watchdog():
    @task
    def evaluate_act_notify():
        from monitoring.pipeline_tasks import watchdog_once

        return watchdog_once()

    evaluate_act_notify()


vigil_watchdog()
