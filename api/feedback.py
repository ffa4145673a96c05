"""``POST /feedback``: the true label of one or many served predictions, each judged on its own.
A prediction is found by its id, whichever served model made it.

A label is stored only for a prediction that exists and was made for the caller's client (or by
a key with ``feedback_all``), when it fits the version and when the prediction has no label yet
(``monitoring.serving.feedback_intake``). A prediction the log has not written yet is waited for:
``VIGIL_FEEDBACK_WAIT_SECONDS`` at least (another worker's log may hold it), and beyond that for as
long as this process's log still holds rows it took before the label arrived (a shipper starting
or catching up), up to ``BACKLOG_WAIT_SECONDS``; not while the store is failing. One object: the answer's status is the item's (200, or
403, 404, 409, 422 with its ``detail``). An array: 200 when every item was taken, else 207, with
each item's result either way.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.access import grant_for
from api.dependencies import ApiProcessDep
from api.process import ApiProcess
from api.schemas import ErrorDetail, FeedbackItem, FeedbackReceived, FeedbackResult
from monitoring.client_keys import FEEDBACK, Grant
from monitoring.serving.feedback_intake import Item, Verdict, is_trusted, judge_all, settle
from monitoring.store.feedback import Made, find_predictions, write_labels

log = logging.getLogger(__name__)
router = APIRouter()
POLL_SECONDS = 0.1
BACKLOG_WAIT_SECONDS = 30.0  # the longest a label waits for this process's own log to write its prediction


@router.post(
    "/feedback",
    summary="Send the true label of one prediction (an object) or many (an array)",
    response_model=FeedbackReceived,
    responses={207: {"model": FeedbackReceived, "description": "a batch of which some labels were refused"},
               401: {"model": ErrorDetail, "description": "no client key, or an unknown or revoked one"},
               403: {"model": ErrorDetail, "description": "the key lacks the feedback (or correct) scope"},
               404: {"model": ErrorDetail, "description": "no such prediction for this client"},
               409: {"model": ErrorDetail, "description": "already labelled: the first label stands"},
               413: {"model": ErrorDetail}, 422: {"model": ErrorDetail},
               503: {"model": ErrorDetail, "description": "the store is unreachable; nothing was recorded"}},
)
async def feedback(body: FeedbackItem | list[FeedbackItem], service: ApiProcessDep,
                   request: Request) -> JSONResponse:
    grant = grant_for(service, request, FEEDBACK)
    single = not isinstance(body, list)
    items = [body] if single else body
    _check_shape(items, service.settings.max_batch_rows)
    wanted = [Item(i.prediction_id, i.label, i.correction, i.reason) for i in items]
    try:
        found = await _find(service, [item.prediction_id for item in wanted])
        judged = judge_all(wanted, found, grant, lambda made: service.label_rules.rule(
            made.model_name, made.model_version, service.champion_of(made.model_name)))
        lost = await run_in_threadpool(_write, service, judged, grant)
    except Exception as error:  # noqa: BLE001 - any store failure: tell the client to retry
        log.warning("feedback not recorded, store unreachable: %s", type(error).__name__)
        raise HTTPException(503, "the store is unreachable: the labels were not recorded; retry later") from None
    return _answer(settle(judged.verdicts, lost), single)


def _check_shape(items: list[FeedbackItem], limit: int) -> None:
    if not items:
        raise HTTPException(422, "the batch is empty: send at least one {prediction_id, label}")
    if len(items) > limit:
        raise HTTPException(413, f"the batch has {len(items)} labels; at most {limit} are accepted per request")
    for index, item in enumerate(items):
        if not item.label_is_storable():
            raise HTTPException(422, f"item {index}: a label must be 1 to 200 characters long")


async def _find(service: ApiProcess, ids: list[str]) -> dict[str, Made]:
    """The stored predictions among ``ids``, waiting for those still in a log buffer."""
    url = service.settings.database_url
    offered_before = service.log.stats.offered if service.log is not None else 0
    found = await run_in_threadpool(find_predictions, url, ids)
    started = time.monotonic()
    while len(found) < len(set(ids)) and _worth_waiting(service, started, offered_before):
        await asyncio.sleep(POLL_SECONDS)
        missing = [pid for pid in ids if pid not in found]
        found.update(await run_in_threadpool(find_predictions, url, missing))
    return found


def _worth_waiting(service: ApiProcess, started: float, offered_before: int) -> bool:
    """Whether a missing prediction may still be written: the minimum wait, then this log's backlog."""
    waited = time.monotonic() - started
    if waited < service.settings.feedback_wait_seconds:
        return True
    if service.log is None or waited >= BACKLOG_WAIT_SECONDS:
        return False
    stats = service.log.stats
    return stats.store_ok and stats.written + stats.dropped < offered_before


def _write(service: ApiProcess, judged, grant: Grant) -> set[str]:
    if not judged.new and not judged.corrections:
        return set()
    return write_labels(service.settings.database_url, judged.new, judged.corrections, client=grant.client,
                        key_id=grant.key_id, trusted=is_trusted(grant), actor=f"api:{grant.actor}")


def _answer(verdicts: list[Verdict], single: bool) -> JSONResponse:
    if single and verdicts[0].status != 200:
        raise HTTPException(verdicts[0].status, verdicts[0].detail)
    taken = sum(v.status == 200 for v in verdicts)
    body = FeedbackReceived(received=taken, refused=len(verdicts) - taken,
                            results=[FeedbackResult(prediction_id=v.prediction_id, status=v.status,
                                                    detail=v.detail) for v in verdicts])
    status = 200 if taken == len(verdicts) else 207
    return JSONResponse(body.model_dump(), status_code=status)
