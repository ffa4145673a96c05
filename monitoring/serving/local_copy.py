"""A local copy of the champion an API last served, to serve from when MLflow is down at start.

Each time a version from the registry is swapped in, the loaded ``Champion`` is pickled to
``<var_dir>/champion-copy/<model name>/champion.pkl`` next to a manifest (``champion.json``: model,
version, sha256 of the pickle, when). At start, when the registry gives no champion because
MLflow cannot be reached, the API loads the copy, checks its checksum and version against the
manifest, and serves it, saying so in ``/health/ready``; the alias poller loads the registry's
version as soon as MLflow answers again.

Both files are replaced atomically, the pickle first, under a file lock (the API's worker
processes share the copy): a crash in between leaves a manifest whose checksum no longer
matches, and the copy is refused rather than served wrong. The checksum
catches a torn or corrupted file; the pickle is as trusted as the code, since this process wrote
it into Vigil's own var dir (keep that directory writable by Vigil only).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import pickle
from pathlib import Path

import cloudpickle

from monitoring.registry.mlflow_registry import Registry
from monitoring.serving.champion import Champion
from monitoring.store.engine import utcnow

log = logging.getLogger(__name__)

MANIFEST = "champion.json"
PICKLE = "champion.pkl"


class LocalCopyError(RuntimeError):
    """There is no usable local copy (missing, corrupted, or not what its manifest says)."""


def copy_dir(var_dir: Path, model_name: str) -> Path:
    return Path(var_dir) / "champion-copy" / model_name


def save(var_dir: Path, champion: Champion) -> Path:
    """Keep ``champion`` as the model's local copy (replacing the previous one); its directory."""
    directory = copy_dir(var_dir, champion.model_name)
    directory.mkdir(parents=True, exist_ok=True)
    # cloudpickle: the input schema's checks are lambdas, which plain pickle refuses
    data = cloudpickle.dumps(dataclasses.replace(champion, from_local_copy=False),
                             protocol=pickle.HIGHEST_PROTOCOL)
    manifest = {"model_name": champion.model_name, "version": champion.version,
                "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                "saved_at": utcnow().isoformat()}
    with open(directory / ".lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed
        _replace(directory / PICKLE, data)
        _replace(directory / MANIFEST, json.dumps(manifest, indent=1).encode())
    return directory


def load(var_dir: Path, model_name: str) -> Champion:
    """The model's local copy, verified, marked ``from_local_copy``; ``LocalCopyError`` if unusable."""
    directory = copy_dir(var_dir, model_name)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        data = (directory / PICKLE).read_bytes()
    except FileNotFoundError:
        raise LocalCopyError(f"there is no local copy of {model_name} in {directory}") from None
    except (OSError, ValueError) as error:
        raise LocalCopyError(f"the local copy of {model_name} cannot be read: {error}") from None
    if hashlib.sha256(data).hexdigest() != manifest.get("sha256"):
        raise LocalCopyError(f"the local copy of {model_name} v{manifest.get('version')} fails its "
                             f"checksum: refused")
    try:
        champion = pickle.loads(data)  # written by this service into its own var dir (see above)
    except Exception as error:  # noqa: BLE001 - e.g. saved by a Vigil whose classes changed since
        raise LocalCopyError(f"the local copy of {model_name} cannot be unpickled: {error}") from None
    if not isinstance(champion, Champion) or (champion.model_name, champion.version) != (
            model_name, manifest.get("version")):
        raise LocalCopyError(f"the local copy in {directory} is not {model_name} "
                             f"v{manifest.get('version')}: refused")
    return dataclasses.replace(champion, from_local_copy=True, loaded_at=utcnow())


def fallback(registry: Registry, var_dir: Path, model_name: str):
    """A ``fallback`` for ``ChampionHolder``: the local copy, only when MLflow is unreachable.

    When MLflow answers and the alias points at nothing, nothing is served: that is an answer.
    """

    def serve_local_copy() -> Champion | None:
        if registry.reachable():
            return None
        try:
            return load(var_dir, model_name)
        except LocalCopyError as error:
            raise LocalCopyError(f"MLflow is unreachable and {error}") from None

    return serve_local_copy


def saver(var_dir: Path):
    """An ``on_swap`` for ``ChampionHolder``: keep each champion swapped in from the registry."""

    def keep(champion: Champion) -> None:
        if champion.from_local_copy:
            return
        try:
            save(var_dir, champion)
        except Exception:  # a copy that cannot be kept must not stop serving
            log.exception("could not keep a local copy of %s v%s", champion.model_name,
                          champion.version)

    return keep


def _replace(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
