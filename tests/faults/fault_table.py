"""The fault table from one command: ``.venv/bin/python -m tests.faults.fault_table``.

Starts an ``mlflow server``, trains a champion into it, runs ``vigil serve`` and ``vigil watch``
under prediction traffic and drives each fault in turn (``tests.faults.scenarios``), first on a
SQLite store, then on a private PostgreSQL cluster (skipped, and said, where none can be made).
Prints the table as Markdown and writes every number, with the observations, as JSON. The same
run is the test ``tests/faults/test_faults.py``, which holds it to the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.fakes.fake_slack import FakeSlack
from tests.faults import scenarios
from tests.faults.harness import MlflowServer, PrivatePostgres, Traffic
from tests.faults.system import Vigil, train_champion


def run_all(root: Path, say: Callable[[str], None] = print) -> list[scenarios.Row]:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    slack = FakeSlack()
    slack.up()
    mlflow = MlflowServer(root / "mlflow")
    rows: list[scenarios.Row] = []
    try:
        say(f"mlflow server up in {mlflow.start_and_wait():.0f} s")
        store = f"sqlite:///{root / 'vigil.db'}"
        with _running(Vigil(store, mlflow.url, train_champion(mlflow.url, store, root), root / "sqlite",
                            slack), say) as (vigil, traffic):
            for fault in (lambda: scenarios.mlflow_down(vigil, traffic, mlflow, hang=False),
                          lambda: scenarios.mlflow_down(vigil, traffic, mlflow, hang=True),
                          lambda: scenarios.watchdog_stalled(vigil, traffic)):
                rows.append(fault())
                say(f"{rows[-1].fault}: done")
        rows.extend(_postgres_rows(root, mlflow, slack, say))
    finally:
        mlflow.stop()
        slack.down()
    return rows


def _postgres_rows(root: Path, mlflow: MlflowServer, slack: FakeSlack, say) -> list[scenarios.Row]:
    try:
        postgres = PrivatePostgres()
        postgres.start()
    except Exception as error:  # noqa: BLE001 - no private cluster here: said, not hidden
        say(f"PostgreSQL fault skipped: no private cluster could be made ({error})")
        return []
    try:
        store = postgres.url
        with _running(Vigil(store, mlflow.url, train_champion(mlflow.url, store, root), root / "pg", slack),
                      say) as (vigil, traffic):
            return [scenarios.postgres_stopped(vigil, traffic, postgres)]
    finally:
        postgres.stop()
        postgres.remove()


class _running:
    """The API and the watchdog started, traffic flowing; all stopped at the end."""

    def __init__(self, vigil: Vigil, say):
        self.vigil, self.say = vigil, say
        self.vigil.root.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> tuple[Vigil, Traffic]:
        from monitoring.training import datasets

        self.vigil.start()
        self.traffic = Traffic(self.vigil.api_url, datasets.generate_features(200, 3).to_dict("records"))
        self.traffic.start()
        self.say(f"vigil serve and vigil watch up on {self.vigil.store_url.split(':')[0]}")
        return self.vigil, self.traffic

    def __exit__(self, *_exc) -> None:
        self.traffic.stop()
        self.vigil.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vigil-faults-") as folder:
        rows = run_all(Path(folder), say=lambda line: print(f"  ... {line}", file=sys.stderr))
    print(scenarios.markdown(rows))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
