"""Vigil monitoring: every 5 minutes, turn the prediction log and feedback into window metrics and drift,
and check that the watchdog is alive.

The run's data interval is the window range: it computes the windows that ended in it (and
refreshes older windows whose feedback arrived in it). Upserts make re-runs and backfills safe.
``check_watchdog`` raises ``watchdog_stalled`` when no watchdog run ended for
VIGIL_WATCHDOG_STALE_SECONDS (resolved once one does) and delivers the outbox itself.
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

    @task
    def check_watchdog():
        from monitoring.pipeline_tasks import check_watchdog

        return check_watchdog()

    compute_windows()
    check_watchdog()


vigil_monitoring()
