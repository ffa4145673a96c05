"""``POST /operator/promote`` and ``/operator/rollback``: alias moves for operators.

Credentials, sent as ``Authorization: Bearer <credential>``:
- a client key with the ``operator`` scope (``vigil keys create alice --scope operator``): a
  per-operator credential, hashed, revocable; the actor recorded is ``api:key:<its name>``
  (the ``operator`` field is not needed and not trusted);
- the shared ``VIGIL_OPERATOR_TOKEN``, kept as a bootstrap (to make the first keys, and for
  existing setups); the actor is ``api:<operator>``, the name typed in the request.

Each acts on the default model (VIGIL_MODEL_NAME), or on the served model named in the body's
``model_name`` (a name this API does not serve: 404, nothing done).

Every attempt, allowed or refused, is recorded in the access log. A wrong credential is recorded
with the client's address; ``VIGIL_OPERATOR_MAX_FAILURES`` of them within the window lock that address out (429 with
``Retry-After``) in every worker, since the count comes from the store (``monitoring.lockout``).
Locked-out attempts are answered without a row (a capped log line instead).
"""

from __future__ import annotations

import hmac
import logging
import math
from datetime import timedelta

from fastapi import APIRouter, Header, HTTPException, Request

from api.dependencies import ApiProcessDep, served_model
from api.process import ApiProcess
from api.schemas import AliasMoved, ErrorDetail, PromoteRequest, RollbackRequest
from monitoring.client_keys import OPERATOR, prefix_of
from monitoring.lockout import lookback, retry_after
from monitoring.registry.mlflow_registry import RegistryError, RegistryUnavailable
from monitoring.registry.promotion import PromotionError, promote, rollback
from monitoring.serving.key_cache import KeyRefused
from monitoring.serving.served_model import ServedModel
from monitoring.store import history
from monitoring.store.engine import utcnow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/operator", tags=["operator"])
BEARER = "Bearer <a key with the operator scope>, or Bearer <VIGIL_OPERATOR_TOKEN> (bootstrap)"

REFUSALS = {401: {"model": ErrorDetail, "description": "no bearer token sent"},
            403: {"model": ErrorDetail, "description": "wrong token, or operator actions disabled"},
            404: {"model": ErrorDetail, "description": "no such version"},
            409: {"model": ErrorDetail, "description": "the move was refused (e.g. version marked bad)"},
            429: {"model": ErrorDetail, "description": "too many wrong tokens from this client: wait Retry-After"}}


@router.post("/promote", summary="Make a version the champion", response_model=AliasMoved, responses=REFUSALS)
def promote_version(body: PromoteRequest, service: ApiProcessDep, request: Request,
                    authorization: str | None = Header(None, description=BEARER)) -> AliasMoved:
    actor = authorize(service, client_of(request), authorization, body.operator, "promote", body.model_name)
    served = served_model(service, body.model_name)
    return _moved(service, served, actor, lambda runtime: promote(
        runtime, model_name=served.name, version=body.version, actor=actor,
        reason=body.reason, channel="api"))


@router.post("/rollback", summary="Give the champion alias back to a former champion",
             response_model=AliasMoved, responses=REFUSALS)
def rollback_version(body: RollbackRequest, service: ApiProcessDep, request: Request,
                     authorization: str | None = Header(None, description=BEARER)) -> AliasMoved:
    actor = authorize(service, client_of(request), authorization, body.operator, "rollback", body.model_name)
    served = served_model(service, body.model_name)
    return _moved(service, served, actor, lambda runtime: rollback(
        runtime, model_name=served.name, actor=actor, reason=body.reason,
        to_version=body.to_version, channel="api"))


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def authorize(service: ApiProcess, client: str, authorization: str | None, typed: str | None,
              action: str, model_name: str | None = None) -> str:
    """The actor to record: ``api:key:<name>`` for an operator key, ``api:<typed name>`` for the
    shared token; refusals are recorded (wrong credentials with the client, for the lockout),
    under ``model_name`` (the model asked for; default: the default model)."""
    claimed = f"api:{typed or 'anonymous'}"
    model = model_name or service.default.name
    _refuse_if_locked_out(service, client, claimed, action)
    expected = service.settings.operator_token
    sent = authorization[7:].strip() if authorization and authorization[:7].lower() == "bearer " else None
    if sent is None:
        raise _refused(service, model, claimed, action, 401, "send an operator key (or the bootstrap token) "
                                                      "as 'Authorization: Bearer <key>'")
    if prefix_of(sent) is not None:
        return _key_actor(service, model, client, sent, claimed, action)
    if expected is not None and hmac.compare_digest(sent.encode(), expected.get_secret_value().encode()):
        if typed is None:
            raise HTTPException(422, "with the shared VIGIL_OPERATOR_TOKEN, name yourself in 'operator'")
        return claimed
    why = ("wrong operator token" if expected is not None else
           "no operator key matches and VIGIL_OPERATOR_TOKEN is not set")
    raise _refused(service, model, claimed, action, 403, why, client)


def _key_actor(service: ApiProcess, model: str, client: str, sent: str, claimed: str, action: str) -> str:
    try:
        grant = service.keys.authorize(sent, OPERATOR)
    except KeyRefused as refused:
        if refused.status == 503:
            raise HTTPException(503, refused.message) from None
        wrong = refused.status == 401  # unknown or revoked: counts towards the lockout
        raise _refused(service, model, claimed, action, 403, refused.message, client if wrong else None) from None
    return f"api:{grant.actor}"


def _refused(service: ApiProcess, model: str, actor: str, action: str, status: int, why: str,
             client: str | None = None) -> HTTPException:
    """Record the refusal (marked with the client when it counts towards the lockout); the error to raise."""
    _record_refusal(service, model, actor, action, why + (history.client_marker(client) if client else ""))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return HTTPException(status, why, headers=headers)


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


def _record_refusal(service: ApiProcess, model: str, actor: str, action: str, why: str) -> None:
    try:
        history.record_attempt(service.runtime.store_url, actor=actor, action=action,
                               allowed=False, channel="api", model_name=model, detail=why)
    except Exception:  # noqa: BLE001 - refuse anyway; say that the refusal could not be recorded
        log.error("refused %s by %s (%s) could not be recorded: store unreachable", action, actor, why)


def acted(actor: str, action):
    """``action()``'s result, its refusals as 4xx answers and an unreachable store or registry as
    503 (nothing was changed: each move is one transaction)."""
    try:
        return action()
    except RegistryUnavailable as error:  # no answer from MLflow: not "no such version"
        raise HTTPException(503, f"{error}; nothing was changed") from None
    except RegistryError as error:
        raise HTTPException(404, str(error)) from None
    except PromotionError as error:
        raise HTTPException(409, str(error)) from None
    except Exception:  # store or registry down: nothing was changed (one transaction)
        log.exception("operator action by %s failed", actor)
        raise HTTPException(503, "the store or the registry is unreachable; nothing was changed") from None


def _moved(service: ApiProcess, served: ServedModel, actor: str, move) -> AliasMoved:
    event = acted(actor, lambda: move(service.runtime))
    served.holder.poll_soon()
    return AliasMoved(model_name=event.model_name, alias=event.alias or served.holder.alias,
                      from_version=event.from_version, to_version=event.to_version, kind=event.kind,
                      actor=actor, event_id=event.id)
