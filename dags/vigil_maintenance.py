"""Vigil maintenance: once a day, apply the data retention (``vigil prune``).

Creates the prediction log's partitions for the next days on PostgreSQL and deletes what is
older than each kind's retention (see ``monitoring.retention``). Re-running a day deletes nothing more.
"""

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag, task

from monitoring.alerts.pipeline_failures import dag_default_args


@dag(
    dag_id="vigil_maintenance",
    schedule=CronDataIntervalTimetable("30 2 * * *", timezone="UTC"),  # runs carry [start, end)
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["vigil"],
    default_args=dag_default_args(retries=2, retry_delay=timedelta(minutes=5)),
)
def vigil_maintenance():
    @task
    def prune(data_interval_end=None):
        from monitoring.pipeline_tasks import prune_store

        return prune_store(now=data_interval_end)

    prune()


vigil_maintenance()
