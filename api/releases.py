"""Canary and shadow releases for operators: ``GET /releases`` (the running release with the
judge's evidence now, and the last ended ones), ``POST /operator/canary`` and ``/operator/shadow``
to start one, ``POST /operator/release/promote`` and ``/operator/release/abort`` to end it.

The same credentials, lockout and access log as ``/operator/promote`` (``api.operator``), and the
same moves as ``vigil canary``/``vigil shadow`` (``monitoring.registry.releases``): one locked,
audited transaction each, recorded with channel ``api``. A refused move changes nothing. Each acts
on the default model, or on the served model named in the body's ``model_name``.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Header, HTTPException, Query, Request

from api.dependencies import ApiProcessDep, served_model
from api.operator import BEARER, REFUSALS, acted, authorize, client_of
from api.process import ApiProcess
from api.schemas import (
    CanaryRequest,
    ErrorDetail,
    ReleaseEndRequest,
    ReleaseEvidence,
    ReleaseInfo,
    ReleaseMoved,
    Releases,
    ShadowRequest,
)
from monitoring.registry.releases import end_release_by_operator, start_release
from monitoring.watchdog import release_view
from monitoring.watchdog.release_view import ReleaseSummary

log = logging.getLogger(__name__)
router = APIRouter(tags=["releases"])
STARTS = {**REFUSALS, 409: {"model": ErrorDetail, "description": "refused: a release runs already, the "
                                                                 "version is the champion or marked bad"}}
ENDS = {**REFUSALS, 409: {"model": ErrorDetail, "description": "no running release"}}
UNREACHABLE = {503: {"model": ErrorDetail, "description": "the store is unreachable"}}


@router.get("/releases", summary="The running release with the judge's evidence now, and the last ended ones",
            response_model=Releases, responses=UNREACHABLE)
def list_releases(service: ApiProcessDep, model_name: str | None = Query(
        None, min_length=1, max_length=200, description="default: the model this API serves")) -> Releases:
    name = model_name or service.default.name
    try:
        running, ended = release_view.summaries(service.settings, name)
    except Exception:  # noqa: BLE001 - the store is down: say so, not a 500
        log.exception("reading the releases of %s failed", name)
        raise HTTPException(503, "the store is unreachable; the releases cannot be read") from None
    return Releases(model_name=name, running=_info(running) if running else None,
                    ended=[_info(release) for release in ended])


@router.post("/operator/canary", summary="Send a version to a canary: it answers a share of the requests",
             response_model=ReleaseMoved, responses=STARTS)
def start_canary(body: CanaryRequest, service: ApiProcessDep, request: Request,
                 authorization: str | None = Header(None, description=BEARER)) -> ReleaseMoved:
    share = service.settings.release.default_share if body.share is None else body.share
    return _start(service, request, authorization, "canary", body, share)


@router.post("/operator/shadow", summary="Send a version to a shadow: it also scores a share of the requests, "
             "never returned", response_model=ReleaseMoved, responses=STARTS)
def start_shadow(body: ShadowRequest, service: ApiProcessDep, request: Request,
                 authorization: str | None = Header(None, description=BEARER)) -> ReleaseMoved:
    return _start(service, request, authorization, "shadow", body, body.share)


@router.post("/operator/release/promote", summary="Promote the running release's challenger to champion now",
             response_model=ReleaseMoved, responses=ENDS)
def promote_release(body: ReleaseEndRequest, service: ApiProcessDep, request: Request,
                    authorization: str | None = Header(None, description=BEARER)) -> ReleaseMoved:
    moved = _end(service, request, authorization, "promote", body)
    served_model(service, body.model_name).holder.poll_soon()  # @champion moved: serve the new champion now
    return moved


@router.post("/operator/release/abort", summary="Abort the running release: the champion answers everything",
             response_model=ReleaseMoved, responses=ENDS)
def abort_release(body: ReleaseEndRequest, service: ApiProcessDep, request: Request,
                  authorization: str | None = Header(None, description=BEARER)) -> ReleaseMoved:
    return _end(service, request, authorization, "abort", body)


def _start(service: ApiProcess, request: Request, authorization: str | None, mode: str,
           body: CanaryRequest | ShadowRequest, share: float) -> ReleaseMoved:
    actor = authorize(service, client_of(request), authorization, body.operator, f"{mode}_start", body.model_name)
    served = served_model(service, body.model_name)
    bake = service.settings.release.bake_minutes if body.bake_minutes is None else body.bake_minutes
    release = acted(actor, lambda: start_release(
        service.runtime, model_name=served.name, version=body.version, mode=mode, share=share,
        actor=actor, reason=body.reason, bake_minutes=bake, channel="api"))
    return ReleaseMoved(release=_info(release_view.describe(release)), actor=actor)


def _end(service: ApiProcess, request: Request, authorization: str | None, decision: str,
         body: ReleaseEndRequest) -> ReleaseMoved:
    actor = authorize(service, client_of(request), authorization, body.operator, f"release_{decision}",
                      body.model_name)
    served = served_model(service, body.model_name)
    release = acted(actor, lambda: end_release_by_operator(
        service.runtime, model_name=served.name, decision=decision, actor=actor,
        reason=body.reason, channel="api"))
    return ReleaseMoved(release=_info(release_view.describe(release)), actor=actor)


def _info(summary: ReleaseSummary) -> ReleaseInfo:
    numbers = summary.numbers
    return ReleaseInfo(
        id=summary.id, model_name=summary.model_name, mode=summary.mode,
        challenger_version=summary.challenger_version, champion_version=summary.champion_version,
        share=summary.share, state=summary.state, started_at=summary.started_at, started_by=summary.started_by,
        bake_until=summary.bake_until, bake_minutes_left=summary.bake_minutes_left, ended_at=summary.ended_at,
        ended_by=summary.ended_by,
        evidence=ReleaseEvidence(
            decision=summary.decision, reason=summary.reason,
            champion_labels=numbers.get("champion labels"), challenger_labels=numbers.get("challenger labels"),
            champion_error_rate=summary.rate("champion"), challenger_error_rate=summary.rate("challenger"),
            error_rate_difference=numbers.get("error rate difference"),
            difference_low=numbers.get("difference low"), difference_high=numbers.get("difference high"),
            promote_evidence=numbers.get("promote evidence"), promote_needs=numbers.get("promote needs"),
            abort_evidence=numbers.get("abort evidence"), abort_needs=numbers.get("abort needs"),
            agreement=numbers.get("agreement"), numbers=numbers))
