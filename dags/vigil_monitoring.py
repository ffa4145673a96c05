"""Vigil monitoring: at every window end (every VIGIL_WINDOW_MINUTES, 5 by default; every minute in the
demo), turn the prediction log and feedback into window metrics and drift, and check that the
watchdog is alive.

The run's data interval is the window range: it computes the windows that ended in it (and
refreshes older windows whose feedback arrived in it), one mapped task per known model, so models
are computed in parallel and one model's failure leaves the others' metrics written. Upserts make re-runs and backfills safe.
The computation fans out one mapped task per known model (dynamic task mapping): models are
computed in parallel on as many workers as there are, and one model's failure fails only its own
task (and so the run). ``check_watchdog`` raises ``watchdog_stalled`` when no watchdog run ended for
VIGIL_WATCHDOG_STALE_SECONDS (resolved once one does) and delivers the outbox itself.
"""

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag, task

from monitoring.alerts.pipeline_failures import dag_default_args
from monitoring.metrics.schedule import configured_cron


@dag(
    dag_id="vigil_monitoring",
    schedule=CronDataIntervalTimetable(configured_cron(), timezone="UTC"),  # runs carry [start, end)
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["vigil"],
    default_args=dag_default_args(retries=2, retry_delay=timedelta(minutes=1)),
)
def vigil_monitoring():
    @task
    def list_models():
        from monitoring.pipeline_tasks import monitored_models

        return monitored_models()

    @task
    def compute_windows(model_name, data_interval_start=None, data_interval_end=None):
        from monitoring.pipeline_tasks import monitor_interval

        return monitor_interval(data_interval_start, data_interval_end, model_name=model_name)

    @task
    def check_watchdog():
        from monitoring.pipeline_tasks import check_watchdog

        return check_watchdog()

    compute_windows.expand(model_name=list_models())
    check_watchdog()


vigil_monitoring()
