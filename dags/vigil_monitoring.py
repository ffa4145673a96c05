"""Vigil monitoring: every 5 minutes, turn the prediction log and feedback into window metrics and drift.

The run's data interval is the window range: it computes the windows that ended in it (and
refreshes older windows whose feedback arrived in it). Upserts make re-runs and backfills safe.
"""

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag, task

from monitoring.alerts.pipeline_failures import dag_default_args


@dag(
    dag_id="vigil_monitoring",
    schedule=CronDataIntervalTimetable("*/5 * * * *", timezone="UTC"),  # runs carry [start, end)
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["vigil"],
    default_args=dag_default_args(retries=2, retry_delay=timedelta(minutes=1)),
)
def vigil_monitoring():
    @task
    def compute_windows(data_interval_start=None, data_interval_end=None):
        from monitoring.pipeline_tasks import monitor_interval

        return monitor_interval(data_interval_start, data_interval_end)

    compute_windows()


vigil_monitoring()
