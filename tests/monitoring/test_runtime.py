"""The composition root: built from the settings, connects to nothing until the registry is used."""

from __future__ import annotations

import subprocess
import sys

from monitoring.runtime import Runtime
from monitoring.settings import Settings


def test_building_a_runtime_imports_no_mlflow_and_the_registry_is_made_once(tmp_path) -> None:
    code = ("import sys; from monitoring.runtime import Runtime; from monitoring.settings import Settings; "
            f"runtime = Runtime(Settings(var_dir={str(tmp_path)!r})); "
            "print(runtime.store_url); print('mlflow' in sys.modules); "
            "first = runtime.registry; print('mlflow' in sys.modules, first is runtime.registry)")
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           cwd=tmp_path).stdout.splitlines()
    assert lines == ["sqlite:///var/vigil.db", "False", "True True"]


def test_the_store_url_is_the_settings_and_no_url_shows_in_its_repr() -> None:
    settings = Settings(database_url="postgresql+psycopg2://vigil:s3cret@db/vigil",
                        mlflow_tracking_uri="http://user:token@mlflow:5000")
    runtime = Runtime(settings)
    assert runtime.store_url == settings.database_url
    assert "s3cret" not in repr(runtime) and "token" not in repr(runtime)
