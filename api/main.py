"""The FastAPI application factory: ``uvicorn --factory api.main:create_app`` (or ``vigil serve``).

Nothing connects at import. The lifespan checks the store's schema (it does not migrate: that is
``vigil db upgrade``'s job), loads the champion of each served model (VIGIL_SERVED_MODELS) and starts
their alias pollers and the prediction log's shipper process; at shutdown the shipper makes a last attempt to write what it holds.

A store that is down at start does not stop the API: it serves, buffers the prediction log as it
does when the store goes away later, and checks the schema once the store answers (readiness
says so meanwhile). A store that answers with a schema behind the code's stops the start:
"run `vigil db upgrade`". MLflow down at start: the local copy of the last champion is served.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api import feedback, operator, predict, releases, status
from api.metrics import RequestMetricsMiddleware
from api.policies import router as policies_router
from api.process import ApiProcess
from monitoring.settings import Settings, get_settings
from monitoring.store.migrations import check_schema

log = logging.getLogger(__name__)

DESCRIPTION = """Predictions from the champion model (`models:/NAME@champion`), every one recorded.

* `POST /predict`: one row as a JSON object keyed by feature name, or a batch as an array of them.
  The answer carries a `prediction_id`, the prediction, the positive-class probability (`null` for
  a regressor or a model that gives none), and the model name and version that produced it.
  Errors: 422 bad rows, 500 the model failed on valid input, 503 no model or too many waiting,
  504 the model did not answer in time.
* `POST /feedback`: the true label for a `prediction_id` (one object or an array), once; a
  correction is explicit (`"correction": true` and a `reason`).
* `POST /predict/{model_name}`: the same, answered by that model, when the API serves several
  (`VIGIL_SERVED_MODELS=loan-default,churn`); each has its own champion, release and features.
  `/predict` answers the default model (`VIGIL_MODEL_NAME`); an unknown name is a 404.
* Both need a client key in the `X-Vigil-Key` header with the scope `predict` or `feedback`
  (`vigil keys create NAME --scope predict`), unless the API runs with `VIGIL_OPEN_ACCESS=true`.
* Operators (`Authorization: Bearer <key with the operator scope>`, or the shared bootstrap
  `VIGIL_OPERATOR_TOKEN`): `POST /operator/promote`, `/operator/rollback`; releases:
  `POST /operator/canary`, `/operator/shadow`, `/operator/release/promote`, `/operator/release/abort`;
  each acts on the default model, or on the served model named in the body's `model_name`.
* `GET /releases`: the running canary or shadow release with the judge's evidence now, and the last ended ones.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    schema_checked = await run_in_threadpool(check_schema, settings.database_url)
    if not schema_checked:
        log.warning("the store is unreachable: serving anyway, the prediction log is buffered "
                    "until it answers (its schema is checked then)")
    service = ApiProcess.build(settings)
    service.schema_checked = schema_checked
    await run_in_threadpool(service.start)
    app.state.service = service
    for served in service.models.values():
        champion = served.champion
        log.info("serving %s@%s: %s", served.name, settings.champion_alias,
                 f"version {champion.version}" if champion else "no version loaded yet")
    if settings.open_access:
        log.warning("OPEN ACCESS (VIGIL_OPEN_ACCESS=true): /predict and /feedback take requests without "
                    "a client key, and their labels count in the watchdog's decisions")
    try:
        yield
    finally:
        app.state.service = None
        await run_in_threadpool(service.stop)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app; ``settings`` defaults to the process's (read from the environment)."""
    settings = settings or get_settings()
    app = FastAPI(title="Vigil", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.service = None
    for module in (predict, feedback, status, operator, releases):
        app.include_router(module.router)
    app.include_router(policies_router)
    app.add_middleware(RequestMetricsMiddleware, metrics=lambda: _metrics(app),
                       max_body_bytes=settings.max_body_bytes)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _metrics(app: FastAPI):
    service = app.state.service
    return service.metrics if service is not None else None


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with ``/predict``'s body described by the default champion's own features."""
    service: ApiProcess | None = app.state.service
    champion = service.default.champion if service else None
    key = champion.version if champion else None
    if app.openapi_schema is not None and getattr(app.state, "openapi_for", None) == key:
        return app.openapi_schema
    app.openapi_schema = None
    schema = FastAPI.openapi(app)
    row = champion.schema.row_json_schema() if champion else {"type": "object"}
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["PredictRow"] = row
    schemas[predict.REQUEST_SCHEMA] = {"oneOf": [
        {"$ref": "#/components/schemas/PredictRow"},
        {"type": "array", "items": {"$ref": "#/components/schemas/PredictRow"}, "minItems": 1,
         "maxItems": app.state.settings.max_batch_rows},
    ]}
    app.openapi_schema, app.state.openapi_for = schema, key
    return schema
