"""``POST /operator/promote`` and ``/operator/rollback``: alias moves for operators holding the token.

The token is ``VIGIL_OPERATOR_TOKEN``, sent as ``Authorization: Bearer <token>``; without one
configured, the endpoints refuse everyone. Every attempt, allowed or refused, is recorded in the
access log with the operator's name (``api:<operator>``). A wrong token is recorded with the client's
address; ``VIGIL_OPERATOR_MAX_FAILURES`` of them within the window lock that address out (429 with
``Retry-After``) in every worker, since the count comes from the store (``monitoring.lockout``).
Locked-out attempts are answered without a row (a capped log line instead).
"""

from __future__ import annotations

import hmac
import logging
import math
from datetime import timedelta

from fastapi import APIRouter, Header, HTTPException, Request

from api.dependencies import ApiProcessDep
from api.process import ApiProcess
from api.schemas import AliasMoved, ErrorDetail, PromoteRequest, RollbackRequest
from monitoring.lockout import lookback, retry_after
from monitoring.registry.mlflow_registry import RegistryError, RegistryUnavailable
from monitoring.registry.promotion import PromotionError, promote, rollback
from monitoring.store import history
from monitoring.store.engine import utcnow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/operator", tags=["operator"])

REFUSALS = {401: {"model": ErrorDetail, "description": "no bearer token sent"},
            403: {"model": ErrorDetail, "description": "wrong token, or operator actions disabled"},
            404: {"model": ErrorDetail, "description": "no such version"},
            409: {"model": ErrorDetail, "description": "the move was refused (e.g. version marked bad)"},
            429: {"model": ErrorDetail, "description": "too many wrong tokens from this client: wait Retry-After"}}


@router.post("/promote", summary="Make a version the champion", response_model=AliasMoved, responses=REFUSALS)
def promote_version(body: PromoteRequest, service: ApiProcessDep, request: Request,
                    authorization: str | None = Header(None, description="Bearer <VIGIL_OPERATOR_TOKEN>")) -> AliasMoved:
    actor = f"api:{body.operator}"
    _authorize(service, _client(request), authorization, actor, "promote")
    return _moved(service, actor, lambda runtime: promote(
        runtime, model_name=service.holder.model_name, version=body.version, actor=actor,
        reason=body.reason, channel="api"))


@router.post("/rollback", summary="Give the champion alias back to a former champion",
             response_model=AliasMoved, responses=REFUSALS)
def rollback_version(body: RollbackRequest, service: ApiProcessDep, request: Request,
                     authorization: str | None = Header(None, description="Bearer <VIGIL_OPERATOR_TOKEN>")) -> AliasMoved:
    actor = f"api:{body.operator}"
    _authorize(service, _client(request), authorization, actor, "rollback")
    return _moved(service, actor, lambda runtime: rollback(
        runtime, model_name=service.holder.model_name, actor=actor, reason=body.reason,
        to_version=body.to_version, channel="api"))


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _authorize(service: ApiProcess, client: str, authorization: str | None, actor: str, action: str) -> None:
    _refuse_if_locked_out(service, client, actor, action)
    expected = service.settings.operator_token
    sent = authorization[7:].strip() if authorization and authorization[:7].lower() == "bearer " else None
    if expected is None or not expected.get_secret_value():
        status, why = 403, "operator actions are disabled: VIGIL_OPERATOR_TOKEN is not set"
    elif sent is None:
        status, why = 401, "send the operator token as 'Authorization: Bearer <token>'"
    elif not hmac.compare_digest(sent.encode(), expected.get_secret_value().encode()):
        status, why = 403, "wrong operator token"
        _record_refusal(service, actor, action, why + history.client_marker(client))
        raise HTTPException(status, why)
    else:
        return
    _record_refusal(service, actor, action, why)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    raise HTTPException(status, why, headers=headers)


def _refuse_if_locked_out(service: ApiProcess, client: str, actor: str, action: str) -> None:
    settings = service.settings
    window = timedelta(seconds=settings.operator_failure_window_seconds)
    lockout = timedelta(seconds=settings.operator_lockout_seconds)
    now = utcnow()
    try:
        refusals = history.refusal_times(service.runtime.store_url, channel="api", client=client,
                                         since=now - lookback(window, lockout))
    except Exception:  # noqa: BLE001 - the store is down: no count, so no operator action either
        raise HTTPException(503, "the store is unreachable; operator actions wait for it") from None
    wait = retry_after(refusals, now, max_failures=settings.operator_max_failures,
                       window=window, lockout=lockout)
    if wait <= 0:
        return
    dropped = _DROPPED[client] = _DROPPED.get(client, 0) + 1
    if dropped == 1 or dropped % 100 == 0:  # a summary, not a line per attempt
        log.warning("client %s locked out: %d %s attempt(s) by %s refused without a row in this worker",
                    client, dropped, action, actor)
    raise HTTPException(429, f"too many wrong operator tokens from this client; retry in {math.ceil(wait)} s",
                        headers={"Retry-After": str(math.ceil(wait))})


_DROPPED: dict[str, int] = {}  # per client: locked-out attempts answered 429 without an access-log row


def _record_refusal(service: ApiProcess, actor: str, action: str, why: str) -> None:
    try:
        history.record_attempt(service.runtime.store_url, actor=actor, action=action,
                               allowed=False, channel="api", model_name=service.holder.model_name,
                               detail=why)
    except Exception:  # noqa: BLE001 - refuse anyway; say that the refusal could not be recorded
        log.error("refused %s by %s (%s) could not be recorded: store unreachable", action, actor, why)


def _moved(service: ApiProcess, actor: str, move) -> AliasMoved:
    try:
        event = move(service.runtime)
    except RegistryUnavailable as error:  # no answer from MLflow: not "no such version"
        raise HTTPException(503, f"{error}; nothing was changed") from None
    except RegistryError as error:
        raise HTTPException(404, str(error)) from None
    except PromotionError as error:
        raise HTTPException(409, str(error)) from None
    except Exception:  # store or registry down: nothing was changed (one transaction)
        log.exception("alias move by %s failed", actor)
        raise HTTPException(503, "the store or the registry is unreachable; nothing was changed") from None
    service.holder.poll_soon()
    return AliasMoved(model_name=event.model_name, alias=event.alias or service.holder.alias,
                      from_version=event.from_version, to_version=event.to_version, kind=event.kind,
                      actor=actor, event_id=event.id)
