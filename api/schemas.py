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


class PredictOne(Prediction):
    """The answer to one row (a JSON object)."""

    model_name: str
    model_version: int


class PredictBatch(BaseModel):
    """The answer to a batch (a JSON array): one prediction per row, in order, from one version."""

    model_name: str
    model_version: int
    predictions: list[Prediction]


class FeedbackItem(BaseModel):
    prediction_id: str = Field(min_length=1, max_length=36)
    label: bool | int | float | str = Field(description="the true outcome")

    def label_is_storable(self) -> bool:
        return not isinstance(self.label, str) or 0 < len(self.label) <= 200


class FeedbackReceived(BaseModel):
    received: int = Field(description="labels recorded (a repeated prediction id counts once; the last label wins)")


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


class WatchdogState(BaseModel):
    seconds_since_last_evaluation: float | None = Field(
        description="since the newest watchdog run ended (null: no watchdog has run yet)")
    stale: bool = Field(description="no run for longer than VIGIL_WATCHDOG_STALE_SECONDS")
    threshold_seconds: float
    last_watcher: str | None = Field(None, description="host:pid of the newest run's process")


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
                             "MLflow unreachable, a stale watchdog")


class PromoteRequest(BaseModel):
    version: int = Field(ge=1)
    reason: str = Field(min_length=1, max_length=2000)
    operator: str = Field(pattern=OPERATOR_NAME, description="who asks (recorded as api:<operator>)")


class RollbackRequest(BaseModel):
    to_version: int | None = Field(None, ge=1, description="default: the most recent former champion not marked bad")
    reason: str = Field(min_length=1, max_length=2000)
    operator: str = Field(pattern=OPERATOR_NAME, description="who asks (recorded as api:<operator>)")


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
