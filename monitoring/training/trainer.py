"""Training a new version: fit, evaluate on a holdout, register in MLflow, send it on if it is better.

The champion is evaluated on the same holdout as the candidate, so "better" compares like with
like. A candidate that beats it goes where ``to`` says (the entry points pass the setting
``VIGIL_NEW_VERSION``): ``canary`` starts a canary release the watchdog's judge ends
(``monitoring.registry.releases``), ``champion`` moves ``@champion`` at once, ``none`` only
registers it. A first version (no champion to compare with, nor to canary against) becomes
champion unless ``to`` is ``none``. The training data's features are kept (a bounded sample) as
the reference that drift is measured against.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitoring.registry.mlflow_registry import Registry, RegistryError, VersionInfo
from monitoring.registry.promotion import PromotionError, move_alias_in
from monitoring.registry.releases import start_release
from monitoring.runtime import Runtime
from monitoring.serving.servable import load_servable
from monitoring.store import history
from monitoring.store.engine import Session, lock_model, session_scope
from monitoring.training import modeling
from monitoring.training.datasets import TabularDataset

REFERENCE_ROWS = 50_000
REFERENCE_ARTIFACT = "reference"
DESTINATIONS = ("canary", "champion", "none")  # where a better new version goes (VIGIL_NEW_VERSION)


@dataclass(frozen=True)
class TrainResult:
    model_name: str
    version: int
    metrics: dict[str, float]
    primary_metric: str
    champion_before: int | None
    champion_score: float | None
    destination: str  # champion (now @champion), canary (a canary release started) or none
    reason: str
    release_id: int | None = None

    @property
    def promoted(self) -> bool:
        return self.destination == "champion"


def decide_destination(
    metric: str, candidate: float, champion: float | None, promote: bool | None, to: str = "champion",
) -> tuple[str, str]:
    """Where the new version goes (``champion``, ``canary`` or ``none``) and why.

    ``to`` is where a better version goes; ``promote`` True sends it there even if it is not
    better, False keeps it registered only. With no champion yet it becomes champion (unless
    ``to`` is ``none``): there is nothing to compare it with, nor to run a canary against.
    """
    if to not in DESTINATIONS:
        raise ValueError(f"a new version goes to one of {', '.join(DESTINATIONS)}, not {to!r}")
    if promote is False:
        return "none", "promotion disabled (--no-promote)"
    if to == "none":
        if promote is True:
            raise ValueError("--promote needs a destination: a canary or the champion, not none")
        return "none", "new versions are only registered (VIGIL_NEW_VERSION=none)"
    if champion is None:
        return "champion", "first version: no champion yet"
    if promote is True:
        return to, (f"sent by hand (--promote): {metric} {candidate:.4f} against the champion's "
                    f"{champion:.4f} on the same holdout")
    if modeling.is_better(metric, candidate, champion):
        return to, f"{metric} {candidate:.4f} beats champion's {champion:.4f} on the same holdout"
    return "none", f"{metric} {candidate:.4f} does not beat champion's {champion:.4f} on the same holdout"


def send_to_canary(runtime: Runtime, *, model_name: str, version: int, actor: str,
                   reason: str) -> tuple[int | None, str]:
    """Start the canary of a new version at the release policy's share and bake time.

    Returns the release id and what happened; (None, why not) when a release cannot start now
    (another one is running, the champion moved): the version stays registered.
    """
    policy = runtime.settings.release
    try:
        release = start_release(runtime, model_name=model_name, version=version, mode="canary",
                                share=policy.default_share, actor=actor, reason=reason,
                                bake_minutes=policy.bake_minutes, channel=actor.split(":", 1)[0])
    except PromotionError as error:
        return None, f"{reason}; no canary started: {error}"
    return release.id, (f"{reason}; canary release {release.id} answers {policy.default_share:.0%} "
                        "of the requests until the judge promotes or aborts it")


def record_new_version(
    session: Session,
    info: VersionInfo,
    *,
    metrics: dict[str, float],
    reference_rows: int,
    actor: str,
    reason: str,
    evidence: dict[str, Any],
) -> None:
    """Tell Vigil's store about a newly registered version: its metrics, reference data, event.

    The caller holds ``lock_model`` for the version's model.
    """
    history.upsert_version(session, model_name=info.model_name, version=info.version,
                              registered_at=info.created_at, run_id=info.run_id, eval_metrics=metrics)
    history.record_reference(session, model_name=info.model_name, version=info.version,
                                uri=f"runs:/{info.run_id}/{REFERENCE_ARTIFACT}/reference.parquet",
                                rows=reference_rows)
    history.record_event(session, model_name=info.model_name, kind="train", actor=actor, reason=reason,
                            to_version=info.version, evidence=evidence)


def train(
    dataset: TabularDataset,
    *,
    registry: Registry,
    store_url: str,
    model_name: str,
    actor: str,
    promote: bool | None = None,
    to: str = "champion",
    seed: int = 0,
    data_origin: str = "demo",
    progress: Callable[[str], None] = lambda _message: None,
) -> TrainResult:
    task = dataset.task
    metric = modeling.PRIMARY_METRIC[task]
    progress(f"splitting {len(dataset.frame):,} rows (task: {task})")
    train_frame, holdout = modeling.split(dataset, seed)

    progress(f"fitting on {len(train_frame):,} rows")
    model = modeling.build_pipeline(dataset).fit(train_frame[dataset.features], train_frame[dataset.target])
    metrics = modeling.evaluate(model, task, holdout, dataset.features, dataset.target)
    progress(f"holdout {metric}: {metrics[metric]:.4f}")

    champion_version = registry.alias_version(model_name, registry.settings.champion_alias)
    champion_score = None
    if champion_version is not None:
        progress(f"evaluating champion version {champion_version} on the same holdout")
        champion_score = _champion_score(registry, model_name, champion_version, dataset, holdout)

    progress("logging the model to MLflow and registering a version")
    info, reference_rows = _register(registry, model, model_name, dataset, train_frame, holdout,
                                     metrics, seed=seed, data_origin=data_origin)
    destination, reason = decide_destination(metric, metrics[metric], champion_score, promote, to)
    doing = {"champion": "promoting", "canary": "sending it to a canary", "none": "not promoting"}[destination]
    progress(f"registered {model_name} version {info.version}; {doing}: {reason}")

    with session_scope(store_url) as session:
        lock_model(session, model_name)
        record_new_version(session, info, metrics=metrics, reference_rows=reference_rows, actor=actor,
                           reason=reason,
                           evidence={"metrics": metrics, "champion_version": champion_version,
                                     "champion_score": champion_score, "primary_metric": metric})
        if destination == "champion":
            move_alias_in(session, registry, model_name=model_name, to_version=info.version, actor=actor,
                          reason=reason, kind="promote",
                          evidence={"numbers": {metric: round(metrics[metric], 4),
                                                "champion " + metric: champion_score}})
    release_id = None
    if destination == "canary":
        runtime = Runtime(registry.settings.model_copy(update={"database_url": store_url}), registry)
        release_id, reason = send_to_canary(runtime, model_name=model_name, version=info.version, actor=actor,
                                            reason=reason)
        destination = "canary" if release_id is not None else "none"
    return TrainResult(model_name, info.version, metrics, metric, champion_version, champion_score,
                       destination, reason, release_id)


def _champion_score(registry: Registry, model_name: str, version: int, dataset: TabularDataset,
                    holdout: Any) -> float:
    """The champion's primary metric on the candidate's holdout."""
    champion = load_servable(registry, model_name, version)
    try:
        return modeling.evaluate(champion, dataset.task, holdout, dataset.features,
                                 dataset.target)[modeling.PRIMARY_METRIC[dataset.task]]
    except (ValueError, KeyError) as error:
        raise RegistryError(
            f"champion version {version} cannot score this data ({error}); "
            "train under another model name or pass --promote to replace it"
        ) from error


def _register(registry: Registry, model: Any, model_name: str, dataset: TabularDataset,
              train_frame: Any, holdout: Any, metrics: dict[str, float], *, seed: int,
              data_origin: str) -> tuple[VersionInfo, int]:
    """Log the fitted model with its reference sample and register it: the version, the sample's rows."""
    with tempfile.TemporaryDirectory() as tmp:
        reference_file = Path(tmp) / "reference.parquet"
        reference = train_frame[dataset.features].sample(
            n=min(REFERENCE_ROWS, len(train_frame)), random_state=seed)
        reference.to_parquet(reference_file, index=False)
        info = registry.log_and_register(
            model=model, model_name=model_name, input_example=train_frame[dataset.features].head(5),
            params={"task": dataset.task, "estimator": type(model[-1]).__name__,
                    "rows": len(dataset.frame), "seed": seed, "data": data_origin,
                    "target": dataset.target, "numeric": ",".join(dataset.numeric),
                    "categorical": ",".join(dataset.categorical)},
            metrics={**metrics, "train_rows": float(len(train_frame)),
                     "holdout_rows": float(len(holdout))},
            extra_artifacts={REFERENCE_ARTIFACT: reference_file},
        )
    return info, len(reference)
