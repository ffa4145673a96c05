"""Vigil training: daily, ingest -> validate -> train -> evaluate vs champion -> register -> promote if better.

Params: ``data_path`` + ``target`` (a CSV of your own; default: demo data seeded by the interval),
``rows`` (demo rows). Validation is not retried: bad data stays bad, and the failure says why.
"""

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from monitoring.alerts.pipeline_failures import dag_default_args


@dag(
    dag_id="vigil_training",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),  # runs carry [start, end)
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["vigil"],
    params={"data_path": Param(None, type=["null", "string"]),
            "target": Param(None, type=["null", "string"]),
            "rows": Param(20000, type="integer", minimum=200)},
    default_args=dag_default_args(retries=2, retry_delay=timedelta(minutes=5)),
)
def vigil_training():
    @task
    def ingest(data_interval_start=None, data_interval_end=None, params=None):
        from monitoring.pipeline_tasks import training_ingest

        return training_ingest(data_interval_start, data_interval_end, data_path=params["data_path"],
                               target=params["target"], rows=params["rows"])

    @task(retries=0)
    def validate(ingested):
        from monitoring.pipeline_tasks import training_validate

        return training_validate(ingested)

    @task
    def train(validated):
        from monitoring.pipeline_tasks import training_train

        return training_train(validated)

    @task
    def evaluate(trained):
        from monitoring.pipeline_tasks import training_evaluate

        return training_evaluate(trained)

    @task
    def register(trained, evaluation, data_interval_start=None, data_interval_end=None):
        from monitoring.pipeline_tasks import training_register

        return training_register(data_interval_start, data_interval_end, trained, evaluation)

    @task
    def promote(registered, evaluation):
        from monitoring.pipeline_tasks import training_promote

        return training_promote(registered, evaluation)

    trained = train(validate(ingest()))
    evaluation = evaluate(trained)
    promote(register(trained, evaluation), evaluation)


vigil_training()
