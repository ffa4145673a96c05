"""Vigil batch scoring: every hour, score the interval's records with the champion and log them.

Params: ``input_path`` (CSV or parquet; default: demo records seeded by the interval),
``output_path`` (default: var/batch/<model>/<interval>.parquet), ``rows`` (demo records).
"""

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from monitoring.alerts.pipeline_failures import dag_default_args


@dag(
    dag_id="vigil_batch_scoring",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),  # runs carry [start, end)
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["vigil"],
    params={"input_path": Param(None, type=["null", "string"]),
            "output_path": Param(None, type=["null", "string"]),
            "rows": Param(500, type="integer", minimum=1)},
    default_args=dag_default_args(retries=2, retry_delay=timedelta(minutes=2)),
)
def vigil_batch_scoring():
    @task
    def score_batch(data_interval_start=None, data_interval_end=None, params=None):
        from monitoring.pipeline_tasks import score_interval

        return score_interval(data_interval_start, data_interval_end, input_path=params["input_path"],
                              output_path=params["output_path"], rows=params["rows"])

    score_batch()


vigil_batch_scoring()
