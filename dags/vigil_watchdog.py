"""Vigil watchdog: every minute, what ``vigil watch`` does in each of its runs.

Evaluate each champion and act (roll back, alert) in one locked step, remind about alerts still
firing, and deliver the Slack outbox: an Airflow-only deployment needs no other process. One mapped task per watched model: one model's
failure (its task fails) does not stop the others' evaluation.
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
    def list_models():
        from monitoring.pipeline_tasks import watched_models

        return watched_models()

    @task
    def evaluate_act(model_name: str):
        from monitoring.pipeline_tasks import watchdog_model

        return watchdog_model(model_name)

    @task(trigger_rule="all_done")
    def notify():
        from monitoring.pipeline_tasks import watchdog_notify

        return watchdog_notify()

    evaluate_act.expand(model_name=list_models()) >> notify()


vigil_watchdog()
