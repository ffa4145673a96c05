"""``POST /predict``: score one row or a batch with the champion, answer, and buffer the log rows.
``POST /predict/{model_name}`` does the same with that served model (VIGIL_SERVED_MODELS): its own
champion, release, input schema and log rows; ``/predict`` answers the default one (VIGIL_MODEL_NAME).

While a release runs (monitoring/serving/release_follower.py), a canary's share of requests is
answered by the challenger instead (sticky per caller: ``X-Vigil-Caller``, else the key's client;
monitoring/serving/routing.py), and a shadow's share is handed, after the answer is computed, to
the shadow scorer (monitoring/serving/shadow.py). Every answer names the version and the role
(champion or canary) that produced it. A challenger that fails on a request answers 500 and its
failure is logged with ``role='canary'``: its error rate is part of what the judge weighs, and
retrying on the champion would hide it.

This is the hot path: the body is parsed with orjson and checked by the champion's input schema
on plain dicts, the fitted pipeline runs through its compiled fast path when it has one (inline),
any other model off the event loop through the micro-batcher (monitoring/serving/scoring.py),
and the answer is serialised with orjson. The predictions are handed to the prediction log (a list
append); the store is never on the request's path.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response

from api.access import grant_for
from api.dependencies import ApiProcessDep, NamedModelDep
from api.process import ApiProcess
from api.schemas import ErrorDetail, PredictBatch, PredictOne
from monitoring.client_keys import PREDICT, Grant
from monitoring.serving.champion import Champion
from monitoring.serving.input_schema import InputError
from monitoring.serving.micro_batch import Overloaded, ScoringTimeout
from monitoring.serving.routing import CALLER_HEADER, takes_challenger
from monitoring.serving.served_model import ServedModel
from monitoring.serving.shadow import ShadowJob
from monitoring.store.engine import utcnow
from monitoring.store.prediction_rows import new_prediction_id
from monitoring.store.release_reads import CANARY, SHADOW

CHAMPION = "champion"

log = logging.getLogger(__name__)
router = APIRouter()

REQUEST_SCHEMA = "PredictRequest"  # filled in with the champion's features (api/openapi.py)


RESPONSES = {
    200: {"model": PredictOne | PredictBatch},
    400: {"model": ErrorDetail, "description": "the body is not JSON"},
    401: {"model": ErrorDetail, "description": "no client key (X-Vigil-Key), or an unknown or revoked one"},
    403: {"model": ErrorDetail, "description": "the key lacks the predict scope"},
    413: {"model": ErrorDetail, "description": "the body or the batch is too large"},
    422: {"model": ErrorDetail, "description": "a row does not match the model's features"},
    500: {"model": ErrorDetail, "description": "the model failed on this (valid) input; logged"},
    503: {"model": ErrorDetail, "description": "no model loaded yet, or too many requests waiting "
                                               "for the model (Retry-After)"},
    504: {"model": ErrorDetail, "description": "the model did not answer in time; logged"},
}
ANY_ROWS = {"oneOf": [{"type": "object", "description": "one row keyed by the model's features (GET /model"
                                                        "?model_name=...)"},
                      {"type": "array", "items": {"type": "object"}, "minItems": 1}]}


@router.post(
    "/predict",
    summary="Predict with the champion (one row as an object, or a batch as an array of objects)",
    response_model=None,
    responses=RESPONSES,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{REQUEST_SCHEMA}"}}}}},
)
async def predict(request: Request, service: ApiProcessDep) -> Response:
    return await _predict(request, service, service.default)


@router.post(
    "/predict/{model_name}",
    summary="Predict with a named served model's champion (VIGIL_SERVED_MODELS)",
    response_model=None,
    responses={**RESPONSES, 404: {"model": ErrorDetail, "description": "this API serves no model of that name"}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": ANY_ROWS}}}},
)
async def predict_with(request: Request, service: ApiProcessDep, served: NamedModelDep) -> Response:
    return await _predict(request, service, served)


async def _predict(request: Request, service: ApiProcess, served: ServedModel) -> Response:
    started = time.perf_counter()
    grant = grant_for(service, request, PREDICT)
    holder = served.holder
    champion = holder.current
    if champion is None:
        raise HTTPException(503, f"no model loaded: {holder.model_name}@{holder.alias} "
                                 f"points at no loadable version yet")
    release = served.release.release
    challenger = served.release.challenger(release)
    caller = request.headers.get(CALLER_HEADER) or grant.client
    chosen = challenger is not None and takes_challenger(release.id, release.share, caller)
    model, role = (challenger, CANARY) if chosen and release.mode == CANARY else (champion, CHAMPION)
    body = await request.body()
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise HTTPException(400, f"the body is not valid JSON: {error}") from None
    try:
        rows, single = model.schema.rows(payload, service.settings.max_batch_rows,
                                         service.settings.max_string_feature_chars)
    except InputError as error:
        raise HTTPException(413 if error.too_large else 422, str(error)) from None
    try:
        labels, scores = await service.scoring.score(model, rows)
    except InputError as error:
        raise HTTPException(422, str(error)) from None
    except Overloaded as error:
        raise HTTPException(503, f"{model.model_name} version {model.version} is busy: {error}; "
                                 f"retry shortly", headers={"Retry-After": "1"}) from None
    except ScoringTimeout as error:
        _model_failed(service, model, role, rows, error, started, grant)
        raise HTTPException(504, f"{model.model_name} version {model.version}: {error} "
                                 f"(VIGIL_PREDICT_TIMEOUT_SECONDS); the failure is logged") from None
    except Exception as error:  # noqa: BLE001 - the model failed on checked input: a server error, logged
        _model_failed(service, model, role, rows, error, started, grant)
        raise HTTPException(500, f"{model.model_name} version {model.version} failed on this "
                                 f"input ({type(error).__name__}: {_short(error)}); the failure is "
                                 f"logged") from None
    ids = [new_prediction_id() for _ in rows]
    if not model.is_classifier:
        probabilities: list[Any] = [None] * len(rows)
    else:
        probabilities = scores
    service.metrics.scored(model.model_name, model.version, len(rows))
    if service.log is not None:
        service.log.add_predictions(model_name=model.model_name, model_version=model.version,
                                    created_at=utcnow(), ids=ids, features=rows, predictions=labels,
                                    scores=scores, latency_ms=(time.perf_counter() - started) * 1000.0,
                                    client=grant.client, key_id=grant.key_id, role=role)
    if single:
        answer: dict[str, Any] = {"prediction_id": ids[0], "prediction": labels[0],
                                  "probability": probabilities[0], "model_name": model.model_name,
                                  "model_version": model.version, "role": role}
    else:
        answer = {"model_name": model.model_name, "model_version": model.version, "role": role,
                  "predictions": [{"prediction_id": i, "prediction": label, "probability": p}
                                  for i, label, p in zip(ids, labels, probabilities, strict=False)]}
    if chosen and release.mode == SHADOW:  # after the answer is computed; a queue put, never a wait
        service.shadow.submit(ShadowJob(challenger, payload, ids, grant.client, grant.key_id))
    return Response(orjson.dumps(answer), media_type="application/json")


def _short(error: Exception, limit: int = 300) -> str:
    text = str(error).replace("\n", " ")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _model_failed(service: ApiProcess, champion: Champion, role: str, rows: list[dict[str, Any]],
                  error: Exception, started: float, grant: Grant) -> None:
    log.exception("%s version %s failed on a checked request", champion.model_name, champion.version)
    service.metrics.model_failures.labels(champion.model_name, str(champion.version)).inc()
    if service.log is None:
        return
    message = f"{type(error).__name__}: {error}"[:2000]
    service.log.add_predictions(model_name=champion.model_name, model_version=champion.version,
                                created_at=utcnow(), ids=[new_prediction_id() for _ in rows], features=rows,
                                predictions=[None] * len(rows), scores=[None] * len(rows),
                                latency_ms=(time.perf_counter() - started) * 1000.0, status="error",
                                error=message, client=grant.client, key_id=grant.key_id, role=role)
