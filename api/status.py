"""``GET /model``, ``GET /health``, ``GET /health/ready`` and ``GET /metrics``: what is served, and how it is.

With several served models (VIGIL_SERVED_MODELS), ``/model?model_name=`` describes any of them and
readiness reports each; one model that is not ready (nothing loaded, a version that cannot be
loaded) is a note while another serves, so the balancer keeps the API for the models that work.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api.dependencies import ApiProcessDep, SettingsDep, served_model
from api.schemas import ErrorDetail, Liveness, ModelInfo, Readiness, ServedModelState, WatchdogState
from monitoring.serving.served_model import ServedModel
from monitoring.store import history
from monitoring.store.engine import is_reachable
from monitoring.store.migrations import SchemaNotCurrent, check_schema

router = APIRouter()


@router.get("/model", summary="The champion being served: version, since when, registration metrics",
            response_model=ModelInfo, responses={404: {"model": ErrorDetail, "description": "this API serves no model of that name"}})
def model_info(service: ApiProcessDep, settings: SettingsDep, model_name: str | None = Query(
        None, min_length=1, max_length=200, description="a served model (default: VIGIL_MODEL_NAME)")) -> ModelInfo:
    holder = served_model(service, model_name).holder
    champion = holder.current
    failure = holder.load_failure
    info = ModelInfo(model_name=holder.model_name, alias=holder.alias, loaded=champion is not None,
                     alias_version=holder.stats.alias_version, last_error=holder.stats.last_error,
                     load_failure=failure.describe(holder.alias, champion.version if champion else None)
                     if failure else None)
    if champion is None:
        return info
    info.version = champion.version
    info.registered_at = champion.info.created_at
    info.run_id = champion.info.run_id
    info.loaded_at = champion.loaded_at
    info.metrics = dict(champion.info.metrics)
    info.features = [{"name": f.name, "kind": f.kind} for f in champion.schema.features]
    info.fast_path = champion.scorer is not None
    info.micro_batched = service.scoring.batched(champion)
    info.task = champion.servable.task
    info.flavor = champion.servable.loaded.flavor
    info.positive_class = champion.servable.positive_class
    info.champion_since = _champion_since(settings.database_url, holder.model_name, holder.alias,
                                          champion.version)
    return info


def _champion_since(url: str, model_name: str, alias: str, version: int):
    """When the alias last moved to ``version`` (None when the store is down or has no record)."""
    try:
        return history.champion_since(url, model_name, alias, version)
    except Exception:  # noqa: BLE001 - model info must answer while the store is down
        return None


OPEN_ACCESS_WARNING = ("VIGIL_OPEN_ACCESS is on: anyone who reaches this API may predict and send labels "
                       "that the watchdog trusts, without a client key")


@router.get("/health", summary="Liveness: the process answers (and says when access is open)",
            response_model=Liveness)
async def health(settings: SettingsDep) -> Liveness:
    if settings.open_access:
        return Liveness(status="ok", open_access=True, warning=OPEN_ACCESS_WARNING)
    return Liveness(status="ok")


@router.get("/health/ready", summary="Readiness: the alias's version is loaded (of at least one served model, "
                                    "each reported in models) and the store is reachable "
                                    "(503 if not, with the problems); MLflow and the watchdog are reported, "
                                    "they do not stop serving",
            response_model=Readiness, responses={503: {"model": Readiness}})
def ready(service: ApiProcessDep, settings: SettingsDep) -> Response:
    served = list(service.models.values())
    several = len(served) > 1
    states = [_model_state(model) for model in served]
    problems: list[str] = []
    notes: list[str] = []
    unreachable = [model.holder for model in served if not model.holder.stats.registry_reachable]
    if unreachable:
        holder, champion = unreachable[0], unreachable[0].current
        notes.append(f"MLflow is unreachable ({holder.stats.last_error}); "
                     + (f"still serving version {champion.version}" if champion else "no version loaded"))
    for state in states:
        if state.source == LOCAL_COPY:
            notes.append(_named(state, f"serving v{state.version} from the local copy: MLflow unreachable", several))
    watchdog = _watchdog_state(service, notes)
    one_serves = any(not state.problems for state in states)  # then the others' problems are notes
    for state in states:
        (notes if one_serves else problems).extend(_named(state, problem, several) for problem in state.problems)
    store_ok = is_reachable(settings.database_url)
    if not store_ok:
        problems.append("the store is unreachable (predictions are buffered, feedback is refused)")
    elif not service.schema_checked:  # the store was down at start
        try:
            service.schema_checked = check_schema(settings.database_url)
        except SchemaNotCurrent as error:
            problems.append(f"{error} (predictions are buffered)")
    default = states[0]
    answer = Readiness(ready=not problems, model_loaded=default.loaded, model_version=default.version,
                       alias_version=default.alias_version, model_source=default.source,
                       store_reachable=store_ok, registry_reachable=not unreachable, watchdog=watchdog,
                       problems=problems, notes=notes, models=states)
    return JSONResponse(answer.model_dump(), status_code=200 if answer.ready else 503)


def _model_state(served: ServedModel) -> ServedModelState:
    holder, champion, failure = served.holder, served.champion, served.holder.load_failure
    described = failure.describe(holder.alias, champion.version if champion else None) if failure else None
    problems = [described] if described else []
    if champion is None and failure is None:
        problems.append(f"no model loaded ({holder.stats.last_error or 'the alias points at nothing'})")
    return ServedModelState(model_name=served.name, loaded=champion is not None,
                            version=champion.version if champion else None, alias_version=holder.stats.alias_version,
                            source=_source(champion), load_failure=described, problems=problems)


def _named(state: ServedModelState, text: str, several: bool) -> str:
    return f"{state.model_name}: {text}" if several else text


LOCAL_COPY = "local copy"


def _source(champion) -> str | None:
    if champion is None:
        return None
    return LOCAL_COPY if champion.from_local_copy else "registry"


def _watchdog_state(service, notes: list[str]) -> WatchdogState | None:
    """The watchdog's freshness as this API last read it; a stale one is a note, not a problem:
    serving does not need the watchdog, and a load balancer must not drop the API for it."""
    found = service.watchdog.freshness()
    if found is None:
        notes.append("the watchdog's state is unknown: the store has not answered yet")
        return None
    if found.stale:
        notes.append(found.describe())
    seconds = None if found.beat is None else round(found.seconds_since, 1)
    return WatchdogState(seconds_since_last_evaluation=seconds, stale=found.stale,
                         threshold_seconds=found.threshold_seconds,
                         last_watcher=found.beat.watcher if found.beat else None)


@router.get("/metrics", summary="Prometheus metrics of this process",
            response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(service: ApiProcessDep) -> Response:
    return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
