"""Vigil watchdog: every minute, evaluate each champion and act (roll back, alert) in one locked step."""

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
    def evaluate_and_act(data_interval_end=None):
        from monitoring.pipeline_tasks import watchdog_once

        return watchdog_once(now=data_interval_end)

    evaluate_and_act()


vigil_watchdog()
