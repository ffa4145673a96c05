"""Each model's watchdog policy for operators: ``GET /operator/policies`` (every model Vigil
knows), ``GET /operator/policies/{model_name}`` and ``PUT /operator/policies/{model_name}``.

A policy is the ``VIGIL_*`` thresholds of ``WatchdogPolicy`` with the model's own values over
them (``monitoring.watchdog.model_policy``). ``PUT`` replaces the model's whole set of overrides:
a field left out follows the environment's default, ``{}`` gives every field back. A bad value or
an unknown field is refused (422, recorded) and nothing changes; a change is audited with channel
``api``. The same credentials, lockout and access log as ``/operator/promote`` (``api.operator``).
"""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from api.dependencies import ApiProcessDep
from api.operator import BEARER, REFUSALS, authorize, client_of
from api.schemas import OPERATOR_NAME, ErrorDetail
from monitoring.store import history
from monitoring.watchdog import model_policy

log = logging.getLogger(__name__)
router = APIRouter(prefix="/operator/policies", tags=["operator"])
MODEL = Path(min_length=1, max_length=200, description="the registered model's name")
WHO = Query(None, pattern=OPERATOR_NAME, description="who asks, with the shared VIGIL_OPERATOR_TOKEN")
READS = {**{code: REFUSALS[code] for code in (401, 403, 429)},
         503: {"model": ErrorDetail, "description": "the store is unreachable"}}
WRITES = {**READS, 404: {"model": ErrorDetail, "description": "Vigil knows no such model"},
          422: {"model": ErrorDetail, "description": "an unknown field or a value out of bounds: nothing changed"}}

Number = StrictInt | StrictFloat


class PolicyValue(BaseModel):
    value: Number = Field(description="what the watchdog uses for this model")
    default: Number = Field(description="the environment's value (VIGIL_<FIELD>)")
    override: bool = Field(description="true: the model's own value")


class ModelPolicy(BaseModel):
    model_name: str
    fields: dict[str, PolicyValue]
    overrides: dict[str, Number] = Field(description="the model's own values only")
    updated_at: datetime | None = None
    updated_by: str | None = None


class PolicyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overrides: dict[str, Number] = Field(max_length=64, description="the model's own values by field name (e.g. "
                                         "{\"min_labels\": 100}); a field left out follows the default")
    reason: str = Field("", max_length=2000)
    operator: str | None = Field(None, pattern=OPERATOR_NAME, description="who asks, with the shared "
                                 "VIGIL_OPERATOR_TOKEN (recorded as api:<operator>); an operator key names itself")


class PolicyChanged(BaseModel):
    policy: ModelPolicy
    changes: list[str] = Field(description="each field changed: old -> new (empty: nothing changed)")
    actor: str


@router.get("", summary="The watchdog policy of every model Vigil knows", response_model=list[ModelPolicy],
            responses=READS)
def list_policies(service: ApiProcessDep, request: Request, operator: str | None = WHO,
                  authorization: str | None = Header(None, description=BEARER)) -> list[ModelPolicy]:
    authorize(service, client_of(request), authorization, operator, "policy_read")
    settings = service.settings
    views = _read(lambda: model_policy.views(service.runtime.store_url, settings.watchdog, settings.champion_alias))
    return [_shown(view) for view in views]


@router.get("/{model_name}", summary="A model's watchdog policy: the values used and which are its own",
            response_model=ModelPolicy, responses={**READS, 404: WRITES[404]})
def get_policy(service: ApiProcessDep, request: Request, model_name: str = MODEL, operator: str | None = WHO,
               authorization: str | None = Header(None, description=BEARER)) -> ModelPolicy:
    authorize(service, client_of(request), authorization, operator, "policy_read")
    settings = service.settings
    return _shown(_read(lambda: model_policy.view(service.runtime.store_url, settings.watchdog, model_name,
                                                  known_by=settings.champion_alias)))


@router.put("/{model_name}", summary="Replace a model's overrides of the watchdog policy",
            response_model=PolicyChanged, responses=WRITES)
def put_policy(body: PolicyRequest, service: ApiProcessDep, request: Request, model_name: str = MODEL,
               authorization: str | None = Header(None, description=BEARER)) -> PolicyChanged:
    actor = authorize(service, client_of(request), authorization, body.operator, "policy_set")
    url = service.runtime.store_url
    try:
        changes = model_policy.replace_overrides(service.settings, model_name, body.overrides, actor=actor,
                                                 channel="api", reason=body.reason)
    except model_policy.PolicyError as error:
        history.record_attempt(url, actor=actor, action="policy_set", allowed=False, channel="api",
                               model_name=model_name, detail=f"refused: {error}")
        raise HTTPException(404 if isinstance(error, model_policy.UnknownModel) else 422, str(error)) from None
    except Exception:  # noqa: BLE001 - the store is down: one transaction, nothing was changed
        log.exception("changing the policy of %s by %s failed", model_name, actor)
        raise HTTPException(503, "the store is unreachable; nothing was changed") from None
    view = _read(lambda: model_policy.view(url, service.settings.watchdog, model_name))
    return PolicyChanged(policy=_shown(view), changes=[str(change) for change in changes], actor=actor)


def _read(read):
    try:
        return read()
    except model_policy.UnknownModel as error:
        raise HTTPException(404, str(error)) from None
    except Exception:  # noqa: BLE001 - the store is down: say so, not a 500
        log.exception("reading the watchdog policies failed")
        raise HTTPException(503, "the store is unreachable; the policies cannot be read") from None


def _shown(view: model_policy.PolicyView) -> ModelPolicy:
    return ModelPolicy(model_name=view.model_name, overrides=view.overrides, updated_at=view.updated_at,
                       updated_by=view.updated_by,
                       fields={name: PolicyValue(value=value, default=default, override=overridden)
                               for name, value, default, overridden in view.rows()})
