"""`vigil prune` as a user runs it (a real process on a real store): what is due is listed per
kind, `--dry-run` deletes nothing, the real run deletes it, and a second run finds nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import func, select

from monitoring.retention.policy import cutoffs
from monitoring.settings import RetentionPolicy
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import AccessLog, Prediction
from tests.monitoring.retention.test_prune import log_predictions

VIGIL = [sys.executable, "-c", "from cli.main import main; main()"]


def _counts(url: str) -> tuple[int, int]:
    with session_scope(url) as session:
        return (session.scalar(select(func.count()).select_from(Prediction)),
                session.scalar(select(func.count()).select_from(AccessLog)))


def test_prune_lists_per_kind_and_dry_run_changes_nothing(settings, tmp_path):
    url = settings.database_url
    due = cutoffs(RetentionPolicy(prediction_days=5), utcnow())
    log_predictions(url, "m", due.predictions - timedelta(hours=1), [f"old-{i}" for i in range(12)])
    log_predictions(url, "m", utcnow(), ["today"])
    with session_scope(url) as session:
        session.add(AccessLog(actor="x", action="promote", allowed=True, channel="cli",
                              created_at=utcnow() - timedelta(days=400)))
    env = {**os.environ, "VIGIL_DATABASE_URL": url, "VIGIL_VAR_DIR": str(settings.var_dir),
           "VIGIL_RETENTION_PREDICTION_DAYS": "5"}

    def vigil(*args):
        done = subprocess.run([*VIGIL, "prune", *args], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    dry = vigil("--dry-run")
    assert f"predictions: would delete 12 rows older than {due.predictions:%Y-%m-%d} 00:00 UTC" in dry
    assert any(line.startswith("access_log: would delete 1 rows older than") for line in dry)
    assert {line.split(":")[0] for line in dry} == {"predictions", "prediction_segments", "feedback", "outbox", "access_log",
                                                    "metric_windows", "drift_results", "data_quality_checks",
                                                    "latency_histograms", "reports"}
    assert _counts(url) == (13, 1)

    done = vigil()
    assert f"predictions: deleted 12 rows older than {due.predictions:%Y-%m-%d} 00:00 UTC" in done
    assert any(line.startswith("access_log: deleted 1 rows") for line in done)
    assert _counts(url) == (1, 0)
    assert all(" 0 " in line for line in vigil())  # nothing left to delete


def test_a_bad_retention_setting_is_refused_clearly(settings, tmp_path):
    env = {**os.environ, "VIGIL_DATABASE_URL": settings.database_url, "VIGIL_RETENTION_PREDICTION_DAYS": "0"}
    done = subprocess.run([*VIGIL, "prune"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2 and not done.stdout  # nothing was pruned
    assert "VIGIL_RETENTION_PREDICTION_DAYS=0: input should be greater than or equal to 1" in done.stderr
