"""Request and answer shapes of the API (pydantic), for validation and the OpenAPI document.

``/predict`` parses its body itself (it is the hot path); its models here document the answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

OPERATOR_NAME = r"^[A-Za-z0-9_.@-]{1,64}$"


class Prediction(BaseModel):
    prediction_id: str = Field(description="quote it when sending the true label to /feedback")
    prediction: Any = Field(description="the predicted class, or the regression output")
    probability: float | None = Field(description="probability of the positive (last) class; null for a regressor")


ROLE_DESCRIPTION = "who answered: champion, or canary (a running canary release's challenger)"


class PredictOne(Prediction):
    """The answer to one row (a JSON object)."""

    model_name: str
    model_version: int
    role: str = Field(description=ROLE_DESCRIPTION)


class PredictBatch(BaseModel):
    """The answer to a batch (a JSON array): one prediction per row, in order, from one version."""

    model_name: str
    model_version: int
    role: str = Field(description=ROLE_DESCRIPTION)
    predictions: list[Prediction]


class FeedbackItem(BaseModel):
    prediction_id: str = Field(min_length=1, max_length=36)
    label: bool | int | float | str = Field(description="the true outcome: a finite number for a regressor, "
                                                        "one of the classes for a classifier")
    correction: bool = Field(False, description="replace the label already given (scope correct; audited)")
    reason: str | None = Field(None, max_length=2000, description="why: required with correction")

    def label_is_storable(self) -> bool:
        return not isinstance(self.label, str) or 0 < len(self.label) <= 200


class FeedbackResult(BaseModel):
    prediction_id: str
    status: int = Field(description="200 taken, 403 scope, 404 no such prediction for your client, "
                                    "409 already labelled, 422 a label that does not fit the model")
    detail: str


class FeedbackReceived(BaseModel):
    received: int = Field(description="labels recorded or corrected")
    refused: int = Field(0, description="labels not recorded (see results)")
    results: list[FeedbackResult] = Field(default_factory=list, description="one per item, in order")


class ModelInfo(BaseModel):
    model_name: str
    alias: str
    loaded: bool
    version: int | None = None
    alias_version: int | None = Field(None, description="where the alias pointed at the last poll")
    registered_at: datetime | None = None
    run_id: str | None = None
    champion_since: datetime | None = Field(None, description="when the alias moved to this version (Vigil's history)")
    loaded_at: datetime | None = None
    metrics: dict[str, float] = Field(default_factory=dict, description="evaluation metrics at registration")
    features: list[dict[str, str]] = Field(default_factory=list, description="the input schema: name and kind")
    fast_path: bool = Field(False, description="scored by the compiled linear fast path (checked against scikit-learn)")
    micro_batched: bool = Field(False, description="concurrent requests are scored together (VIGIL_MICRO_BATCHING)")
    task: str | None = Field(None, description="classification or regression (tag vigil.task, else inferred)")
    flavor: str | None = Field(None, description="the MLflow flavor it is scored through, e.g. mlflow.sklearn")
    positive_class: Any = Field(None, description="the class whose probability /predict answers")
    load_failure: str | None = Field(None, description="the alias points at a version that cannot be loaded")
    last_error: str | None = None


class Liveness(BaseModel):
    status: str
    open_access: bool = Field(False, description="VIGIL_OPEN_ACCESS: /predict and /feedback take requests "
                                                 "without a client key (the embedded demo only)")
    warning: str | None = None


class WatchdogState(BaseModel):
    seconds_since_last_evaluation: float | None = Field(
        description="since the newest watchdog run ended (null: no watchdog has run yet)")
    stale: bool = Field(description="no run for longer than VIGIL_WATCHDOG_STALE_SECONDS")
    threshold_seconds: float
    last_watcher: str | None = Field(None, description="host:pid of the newest run's process")


class ServedModelState(BaseModel):
    """One served model as readiness sees it."""

    model_name: str
    loaded: bool
    version: int | None = Field(None, description="the champion version being served")
    alias_version: int | None = Field(None, description="where the alias points (at the last poll)")
    source: str | None = Field(None, description="registry, or local copy while MLflow is unreachable")
    load_failure: str | None = Field(None, description="the alias points at a version that cannot be loaded")
    problems: list[str] = Field(default_factory=list, description="why this model is not ready")


class Readiness(BaseModel):
    ready: bool
    model_loaded: bool
    model_version: int | None
    model_source: str | None = None  # "registry", or "local copy" while MLflow is unreachable
    alias_version: int | None = Field(None, description="where the alias points (at the last poll)")
    store_reachable: bool
    registry_reachable: bool = Field(True, description="MLflow answered the last alias poll "
                                     "(if not, the loaded version keeps serving)")
    watchdog: WatchdogState | None = Field(None, description="null while the store never answered")
    problems: list[str]
    notes: list[str] = Field(default_factory=list, description="serving, but something to know: "
                             "MLflow unreachable, a stale watchdog, one of several models not ready")
    models: list[ServedModelState] = Field(default_factory=list, description="each served model, the "
                                           "default (model_loaded, model_version above) first")


def _model_field():
    return Field(None, min_length=1, max_length=200, description="the served model to act on "
                 "(default: VIGIL_MODEL_NAME, the one /predict answers)")


class PromoteRequest(BaseModel):
    model_name: str | None = _model_field()
    version: int = Field(ge=1)
    reason: str = Field(min_length=1, max_length=2000)
    operator: str | None = Field(None, pattern=OPERATOR_NAME, description="who asks, with the shared "
                                 "VIGIL_OPERATOR_TOKEN (recorded as api:<operator>); an operator key names itself")


class RollbackRequest(BaseModel):
    model_name: str | None = _model_field()
    to_version: int | None = Field(None, ge=1, description="default: the most recent former champion not marked bad")
    reason: str = Field(min_length=1, max_length=2000)
    operator: str | None = Field(None, pattern=OPERATOR_NAME, description="who asks, with the shared "
                                 "VIGIL_OPERATOR_TOKEN (recorded as api:<operator>); an operator key names itself")


class AliasMoved(BaseModel):
    model_name: str
    alias: str
    from_version: int | None
    to_version: int | None
    kind: str
    actor: str
    event_id: int


class ErrorDetail(BaseModel):
    detail: Any


_WHO = Field(None, pattern=OPERATOR_NAME, description="who asks, with the shared VIGIL_OPERATOR_TOKEN "
             "(recorded as api:<operator>); an operator key names itself")


class CanaryRequest(BaseModel):
    model_name: str | None = _model_field()
    version: int = Field(ge=1, description="the registered version to send to the canary")
    share: float | None = Field(None, gt=0, lt=1, description="share of requests it answers "
                                "(default VIGIL_RELEASE_DEFAULT_SHARE)")
    bake_minutes: float | None = Field(None, ge=0, le=100_000, description="no promotion before "
                                       "(default VIGIL_RELEASE_BAKE_MINUTES)")
    reason: str = Field(min_length=1, max_length=2000)
    operator: str | None = _WHO


class ShadowRequest(BaseModel):
    model_name: str | None = _model_field()
    version: int = Field(ge=1, description="the registered version to shadow the champion")
    share: float = Field(1.0, gt=0, le=1, description="share of requests it also scores (never returned)")
    bake_minutes: float | None = Field(None, ge=0, le=100_000, description="no promotion before "
                                       "(default VIGIL_RELEASE_BAKE_MINUTES)")
    reason: str = Field(min_length=1, max_length=2000)
    operator: str | None = _WHO


class ReleaseEndRequest(BaseModel):
    model_name: str | None = _model_field()
    reason: str = Field(min_length=1, max_length=2000)
    operator: str | None = _WHO


class ReleaseEvidence(BaseModel):
    """The judge's evidence: now for a running release, at its end for an ended one."""

    decision: str | None = Field(None, description="continue | promote | abort | inconclusive; "
                                 "an ended release's state")
    reason: str
    champion_labels: int | None = None
    challenger_labels: int | None = None
    champion_error_rate: float | None = None
    challenger_error_rate: float | None = None
    error_rate_difference: float | None = Field(None, description="challenger minus champion")
    difference_low: float | None = None
    difference_high: float | None = None
    promote_evidence: float | None = Field(None, description="promotes at promote_needs or above")
    promote_needs: float | None = None
    abort_evidence: float | None = Field(None, description="aborts at abort_needs or above")
    abort_needs: float | None = None
    agreement: float | None = Field(None, description="a shadow's pairs giving the same answer")
    numbers: dict[str, float | int | None] = Field(default_factory=dict, description="every number the judge gave")


class ReleaseInfo(BaseModel):
    id: int
    model_name: str
    mode: str
    challenger_version: int
    champion_version: int
    share: float
    state: str
    started_at: datetime
    started_by: str
    bake_until: datetime
    bake_minutes_left: float
    ended_at: datetime | None
    ended_by: str | None
    evidence: ReleaseEvidence


class Releases(BaseModel):
    model_name: str
    running: ReleaseInfo | None
    ended: list[ReleaseInfo]


class ReleaseMoved(BaseModel):
    release: ReleaseInfo
    actor: str
