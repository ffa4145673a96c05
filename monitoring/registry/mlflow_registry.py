"""The one module that talks to MLflow: experiments, runs, the model registry and its aliases.

Promotion is moving an alias (``champion`` by default); deprecated stages are never used.
Everything is configured from the settings at call time, never at import.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from monitoring.settings import ReliabilityPolicy, Settings

log = logging.getLogger(__name__)

# Pinning requirements keeps log_model fast (MLflow would otherwise infer them: ~6 s).
MODEL_PIP_REQUIREMENTS = ["scikit-learn>=1.9,<1.10", "pandas<3", "numpy", "cloudpickle"]


REFERENCE_RUN_TAG = "vigil.reference_of"  # on the runs Vigil makes to keep an adopted version's reference


class RegistryError(RuntimeError):
    """A registry operation failed or was asked for something that does not exist."""


class MissingSignature(RegistryError):
    """The version was logged without an input signature: Vigil cannot check requests for it."""


# The pyfunc loaders whose raw model is the library's own object (predict_proba, classes_)
NATIVE_FLAVORS = ("mlflow.sklearn", "mlflow.xgboost", "mlflow.lightgbm")


class RegistryUnavailable(RegistryError):
    """MLflow did not answer (down, timed out, failing): no answer, unlike "no such alias"."""


# MLflow's answers that a name or alias does not exist; any other failure means it did not answer
_ANSWERS = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})
_USER_INFO = re.compile(r"://[^/@\s]+@")
_CAUSES = ("Connection refused", "Read timed out", "timed out", "Name or service not known",
           "Connection reset", "Remote end closed connection")


@dataclass(frozen=True)
class VersionInfo:
    model_name: str
    version: int
    run_id: str | None
    created_at: datetime
    aliases: tuple[str, ...]
    metrics: dict[str, float]
    source: str


@dataclass(frozen=True)
class LoadedVersion:
    """A version loaded through ``mlflow.pyfunc``, and what Vigil reads from its MLmodel file."""

    info: VersionInfo
    pyfunc: Any  # mlflow.pyfunc.PyFuncModel
    flavor: str  # the pyfunc loader module: "mlflow.sklearn", "mlflow.pyfunc.model", ...
    native: Any | None  # the scikit-learn / XGBoost / LightGBM model itself, for the other flavors None
    input_columns: list[dict[str, Any]]  # [{"name": ..., "type": "double", "required": True}, ...]
    output_columns: list[dict[str, Any]]  # [] when the signature declares no outputs
    input_example: pd.DataFrame | None
    tags: dict[str, str]


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _limit_mlflow_requests(policy: ReliabilityPolicy) -> None:
    """Short timeouts and few retries for this process's MLflow client.

    MLflow reads these variables on every request and has no per-client setting, so they are set
    for the process when its registry is made. Its defaults (120 s, 7 retries with backoff) make
    one call to a dead server take minutes.
    """
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(policy.mlflow_timeout_seconds)
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(policy.mlflow_max_retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = str(policy.mlflow_backoff_factor)


def _credentials(settings: Settings) -> None:
    """An MLflow server behind basic-auth: the user and password MLflow's client sends.

    MLflow reads them only from its own variables, so a password given as
    ``MLFLOW_TRACKING_PASSWORD_FILE`` (``monitoring.settings``) is put there for this process.
    """
    if settings.mlflow_tracking_username:
        os.environ["MLFLOW_TRACKING_USERNAME"] = settings.mlflow_tracking_username
    if settings.mlflow_tracking_password is not None:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = settings.mlflow_tracking_password.get_secret_value()


def unavailable(error: BaseException, where: str, what: str) -> RegistryUnavailable:
    """The outage as one short line: where, doing what, and the cause (no credentials)."""
    text = str(error)
    cause = next((phrase.lower() for phrase in _CAUSES if phrase in text), None)
    if cause is None:
        caused_by = re.search(r"Caused by (\w+)", text)
        cause = caused_by.group(1) if caused_by else f"{type(error).__name__}: {text[:200]}"
    return RegistryUnavailable(f"MLflow unreachable at {_USER_INFO.sub('://', where)} ({what}): "
                               f"{cause}")


class Registry:
    """MLflow tracking and registry for one tracking URI."""

    def __init__(self, settings: Settings):
        _quiet_mlflow()
        _limit_mlflow_requests(settings.reliability)
        _credentials(settings)
        from mlflow import MlflowClient

        self.settings = settings
        self.tracking_uri = settings.mlflow_tracking_uri
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri[len("sqlite:///"):]).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    # -- experiments and runs -------------------------------------------------------------
    def experiment_id(self) -> str:
        name = self.settings.mlflow_experiment
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        artifact_location = None
        if not self.tracking_uri.startswith(("http://", "https://")):
            root = self.settings.artifact_root.expanduser().resolve()
            root.mkdir(parents=True, exist_ok=True)
            artifact_location = root.as_uri()
        return self.client.create_experiment(name, artifact_location=artifact_location)

    def log_and_register(
        self,
        *,
        model: Any,
        model_name: str,
        input_example: pd.DataFrame,
        params: dict[str, Any],
        metrics: dict[str, float],
        tags: dict[str, str] | None = None,
        extra_artifacts: dict[str, Path] | None = None,
    ) -> VersionInfo:
        """Log a fitted scikit-learn model with its signature, params and metrics; register it."""
        import mlflow
        from mlflow.models import infer_signature

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        signature = infer_signature(input_example, _predict_output(model, input_example))
        with mlflow.start_run(experiment_id=self.experiment_id(), tags=tags):
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
            for artifact_path, local in (extra_artifacts or {}).items():
                mlflow.log_artifact(str(local), artifact_path=artifact_path)
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=signature,
                input_example=input_example.head(5),
                pip_requirements=MODEL_PIP_REQUIREMENTS,
                serialization_format="cloudpickle",
                registered_model_name=model_name,
            )
        return self.get_version(model_name, int(info.registered_model_version))

    def logged_dataset(self, run_id: str, dst: Path) -> Path | None:
        """A local copy of the first loadable dataset logged with ``mlflow.log_input`` in the run
        (the ``training`` context first); None when the run logged none that can be loaded (a
        dataset logged from memory keeps only its schema and digest, not its rows)."""
        import mlflow.data

        inputs = self.client.get_run(run_id).inputs.dataset_inputs
        training = [i for i in inputs
                    if any(t.key == "mlflow.data.context" and t.value == "training" for t in i.tags)]
        for dataset_input in training + [i for i in inputs if i not in training]:
            try:
                local = mlflow.data.get_source(dataset_input).load(dst_path=str(dst))
            except Exception as error:  # noqa: BLE001 - not loadable (code, a table elsewhere)
                log.info("run %s: dataset %s cannot be loaded (%s)", run_id,
                         dataset_input.dataset.name, error)
                continue
            if isinstance(local, str) and Path(local).is_file():
                return Path(local)
        return None

    def log_reference(self, model_name: str, version: int, file: Path) -> str:
        """Keep ``file`` as the version's reference in a run of Vigil's own experiment; its uri.

        The team's own run is left untouched; every Vigil process can fetch the file from MLflow.
        """
        tags = {REFERENCE_RUN_TAG: f"{model_name}/v{version}"}
        run = self.client.create_run(self.experiment_id(), tags=tags,
                                     run_name=f"reference-{model_name}-v{version}")
        self.client.log_artifact(run.info.run_id, str(file), artifact_path="reference")
        self.client.set_terminated(run.info.run_id)
        return f"runs:/{run.info.run_id}/reference/{file.name}"

    def download_artifact(self, run_id: str, artifact_path: str, dst: Path) -> Path:
        dst.mkdir(parents=True, exist_ok=True)
        return Path(self.client.download_artifacts(run_id, artifact_path, str(dst)))

    # -- versions and aliases -------------------------------------------------------------
    def get_version(self, model_name: str, version: int) -> VersionInfo:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(model_name, str(version))
        except MlflowException as error:
            if error.error_code in _ANSWERS:
                raise RegistryError(f"model {model_name!r} has no version {version}") from error
            raise unavailable(error, self.tracking_uri, f"reading {model_name} v{version}") from error
        except Exception as error:  # a driver or network error that MLflow did not wrap
            raise unavailable(error, self.tracking_uri, f"reading {model_name} v{version}") from error
        return self._info(mv)

    def list_versions(self, model_name: str) -> list[VersionInfo]:
        """Every version of the model, oldest first (empty when the model is not registered)."""
        versions = self.client.search_model_versions(f"name = '{model_name}'")
        # search results may carry no aliases against a server: re-read each version
        return sorted((self.get_version(model_name, int(v.version)) for v in versions),
                      key=lambda v: v.version)

    def alias_version(self, model_name: str, alias: str) -> int | None:
        """The version the alias points at, or None when it points at nothing (or the model does
        not exist). Raises RegistryUnavailable when MLflow does not answer: that is no answer."""
        from mlflow.exceptions import MlflowException

        try:
            return int(self.client.get_model_version_by_alias(model_name, alias).version)
        except MlflowException as error:
            if error.error_code in _ANSWERS:
                return None
            raise unavailable(error, self.tracking_uri, f"reading {model_name}@{alias}") from error
        except Exception as error:  # a driver or network error that MLflow did not wrap
            raise unavailable(error, self.tracking_uri, f"reading {model_name}@{alias}") from error

    def model_exists(self, model_name: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(model_name)
        except MlflowException as error:
            if error.error_code in _ANSWERS:
                return False
            raise unavailable(error, self.tracking_uri, f"reading {model_name}") from error
        except Exception as error:  # a driver or network error that MLflow did not wrap
            raise unavailable(error, self.tracking_uri, f"reading {model_name}") from error
        return True

    def reachable(self) -> bool:
        """Whether MLflow answers now (tells "MLflow is down" from "the alias points at nothing")."""
        try:
            self.client.search_registered_models(max_results=1)
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False
        return True

    def set_alias(self, model_name: str, alias: str, version: int) -> None:
        self.get_version(model_name, version)  # a clear error for a version that does not exist
        self.client.set_registered_model_alias(model_name, alias, str(version))

    def delete_alias(self, model_name: str, alias: str) -> None:
        self.client.delete_registered_model_alias(model_name, alias)

    def input_columns(self, model_name: str, version: int) -> list[dict[str, Any]]:
        """The version's input signature as ``[{"name": ..., "type": "double"}, ...]`` ([] if none)."""
        signature = self._signature(model_name, version)
        return signature.inputs.to_dict() if signature is not None and signature.inputs is not None else []

    def _signature(self, model_name: str, version: int) -> Any:
        """The version's signature, read from its MLmodel file without downloading the model."""
        import mlflow.models

        mlflow.set_registry_uri(self.tracking_uri)
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            return mlflow.models.get_model_info(f"models:/{model_name}/{version}").signature
        except Exception as error:
            raise RegistryError(f"cannot read {model_name} version {version}: {error}") from error

    def load_version(self, model_name: str, version: int) -> LoadedVersion:
        """A registered version loaded through ``mlflow.pyfunc``, with its flavor's own model.

        The signature is read first (from the MLmodel file, without downloading the model), so a
        version without one is refused before its artifacts are fetched.
        """
        import mlflow.pyfunc

        uri = f"models:/{model_name}/{version}"
        info = self.get_version(model_name, version)
        signature = self._signature(model_name, version)
        if signature is None or signature.inputs is None:
            raise MissingSignature(
                f"{model_name} version {version} has no input signature, so Vigil cannot check "
                f"requests for it; log the model with a signature: "
                f"mlflow.models.infer_signature(X, y) (with X a DataFrame of the features)")
        try:
            pyfunc = mlflow.pyfunc.load_model(uri)
        except Exception as error:
            raise RegistryError(f"cannot load {model_name} version {version}: {error}") from error
        flavor = pyfunc.loader_module or "mlflow.pyfunc.model"
        example = getattr(pyfunc, "input_example", None)
        return LoadedVersion(
            info=info, pyfunc=pyfunc, flavor=flavor,
            native=pyfunc.get_raw_model() if flavor in NATIVE_FLAVORS else None,
            input_columns=signature.inputs.to_dict(),
            output_columns=signature.outputs.to_dict() if signature.outputs is not None else [],
            input_example=example if isinstance(example, pd.DataFrame) else None,
            tags=self.model_tags(model_name, version),
        )

    def model_tags(self, model_name: str, version: int) -> dict[str, str]:
        """The registered model's tags, overridden by the version's own."""
        model = self.client.get_registered_model(model_name)
        mv = self.client.get_model_version(model_name, str(version))
        return {**(model.tags or {}), **(mv.tags or {})}

    def _info(self, mv: Any) -> VersionInfo:
        metrics: dict[str, float] = {}
        if mv.run_id:
            metrics = dict(self.client.get_run(mv.run_id).data.metrics)
        return VersionInfo(
            model_name=mv.name,
            version=int(mv.version),
            run_id=mv.run_id,
            created_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC),
            aliases=tuple(mv.aliases or ()),
            metrics=metrics,
            source=mv.source,
        )


def _predict_output(model: Any, frame: pd.DataFrame) -> Any:
    return model.predict(frame.head(5))
