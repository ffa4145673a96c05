"""``POST /feedback``: the true label of one or many served predictions, upserted into the store."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException

from api.dependencies import ApiProcessDep
from api.schemas import ErrorDetail, FeedbackItem, FeedbackReceived
from monitoring.store.feedback import record_feedback

log = logging.getLogger(__name__)
router = APIRouter()


@router.post(
    "/feedback",
    summary="Send the true label of one prediction (an object) or many (an array)",
    response_model=FeedbackReceived,
    responses={413: {"model": ErrorDetail}, 422: {"model": ErrorDetail},
               503: {"model": ErrorDetail, "description": "the store is unreachable; nothing was recorded"}},
)
def feedback(body: FeedbackItem | list[FeedbackItem], service: ApiProcessDep) -> FeedbackReceived:
    items = body if isinstance(body, list) else [body]
    limit = service.settings.max_batch_rows
    if not items:
        raise HTTPException(422, "the batch is empty: send at least one {prediction_id, label}")
    if len(items) > limit:
        raise HTTPException(413, f"the batch has {len(items)} labels; at most {limit} are accepted per request")
    for index, item in enumerate(items):
        if not item.label_is_storable():
            raise HTTPException(422, f"item {index}: a label must be 1 to 200 characters long")
    labels = {item.prediction_id: item.label for item in items}  # a repeated id: the last label wins
    try:
        written = record_feedback(service.settings.database_url, labels, service.holder.model_name)
    except Exception as error:  # noqa: BLE001 - any store failure: tell the client to retry
        log.warning("feedback not recorded, store unreachable: %s", type(error).__name__)
        raise HTTPException(503, "the store is unreachable: the labels were not recorded; retry later") from None
    return FeedbackReceived(received=written)
