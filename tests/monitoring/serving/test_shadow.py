"""Shadow scoring: the worker's scoring logs paired rows (pure logic, with fakes), and the API's
bounded queue in front of a real worker process drops and counts instead of waiting when the
worker is stalled, then the worker scores and logs what was queued."""

from __future__ import annotations

import os
import signal
import time

from sqlalchemy import func, select

from monitoring.serving.input_schema import InputError
from monitoring.serving.shadow import ShadowScorer
from monitoring.serving.shadow_worker import Challengers, FrameReader, ShadowJob, ShadowScoring, frame
from monitoring.store.engine import session_scope
from monitoring.store.migrations import upgrade
from monitoring.store.tables import Prediction
from tests.api.conftest import demo_rows, make_settings, train_version


class _Challenger:
    model_name, version = "m", 2

    def __init__(self, fails: bool = False):
        self.fails = fails

    @property
    def schema(self):
        return _Rows()

    def predict(self, rows):
        if self.fails:
            raise ValueError("broken model")
        return [1] * len(rows), [0.5] * len(rows)


class _Rows:
    def rows(self, payload, max_rows, max_chars):
        if payload == "bad":
            raise InputError("not a row")
        return (payload if isinstance(payload, list) else [payload]), not isinstance(payload, list)


class _Log:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def add_predictions(self, **fields) -> int:
        self.calls.append(fields)
        return len(fields["ids"])


def test_scored_jobs_are_logged_as_shadow_rows_paired_with_the_champions_and_failures_as_errors():
    log = _Log()
    scoring = ShadowScoring(log, max_rows=10, max_string_chars=10)
    good, broken = _Challenger(), _Challenger(fails=True)
    scoring.score([ShadowJob(good, {"x": 1}, ["c1"], "shop", 7), ShadowJob(good, [{"x": 2}, {"x": 3}], ["c2", "c3"],
                                                                            None, None),
                   ShadowJob(good, "bad", ["c4"], None, None), ShadowJob(broken, {"x": 5}, ["c5"], None, None)])
    by_pair = {pid: call for call in log.calls for pid in call["paired_ids"]}
    assert set(by_pair) == {"c1", "c2", "c3", "c4", "c5"}
    assert {call["role"] for call in log.calls} == {"shadow"}
    assert by_pair["c1"]["client"] == "shop" and by_pair["c1"]["key_id"] == 7
    assert by_pair["c2"]["predictions"] == [1, 1] and by_pair["c2"]["features"] == [{}, {}]
    assert by_pair["c4"]["status"] == "error" and "InputError: not a row" in by_pair["c4"]["error"]
    assert by_pair["c5"]["status"] == "error" and "broken model" in by_pair["c5"]["error"]
    assert scoring.counts() == {"jobs": 4, "scored": 3, "failed": 2}


def test_a_version_that_cannot_be_loaded_fails_its_jobs_and_is_not_retried_at_once():
    calls = []

    def load(name, version):
        calls.append((name, version))
        raise OSError("artifacts gone")

    challengers = Challengers(load)
    assert "could not be loaded: OSError: artifacts gone" in challengers.get("m", 3)
    assert "could not be loaded" in challengers.get("m", 3)
    assert calls == [("m", 3)]


def test_frames_cut_anywhere_are_read_whole():
    data = frame(b"first") + frame(b"") + frame(b"x" * 70_000)
    reader, bodies = FrameReader(), []
    for start in range(0, len(data), 999):
        bodies.extend(reader.feed(data[start:start + 999]))
    assert bodies == [b"first", b"", b"x" * 70_000]


def _shadow_rows(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(Prediction).where(Prediction.role == "shadow"))


def _until(condition, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_stalled_worker_makes_the_queue_drop_and_count_then_what_was_queued_is_scored(sqlite_url, mlflow_store,
                                                                                        tmp_path):
    settings = make_settings(sqlite_url, mlflow_store, tmp_path / "var")
    upgrade(settings.database_url)
    version = train_version(settings)
    challenger = _Challenger()
    challenger.model_name, challenger.version = settings.model_name, version
    scorer = ShadowScorer(settings, capacity=3)
    scorer.start()
    rows = demo_rows(10)
    try:
        assert scorer.submit(ShadowJob(challenger, rows[0], ["champion-0"], None, None))
        _until(lambda: scorer.counts.scored == 1)  # the worker is up and has loaded the version
        os.kill(scorer.pid, signal.SIGSTOP)
        try:
            taken = [scorer.submit(ShadowJob(challenger, rows[i], [f"champion-{i}"], None, None))
                     for i in range(1, 10)]
            counts = scorer.counts
            assert sum(taken) == 3 and (counts.submitted, counts.dropped) == (10, 6)
            assert scorer.queued == 3
        finally:
            os.kill(scorer.pid, signal.SIGCONT)
        _until(lambda: scorer.counts.scored == 4)
    finally:
        scorer.stop()
    assert scorer.counts.failed == 0
    _until(lambda: _shadow_rows(settings.database_url) == 4)
    with session_scope(settings.database_url) as session:
        paired = set(session.scalars(select(Prediction.paired_id).where(Prediction.role == "shadow")))
    assert paired == {f"champion-{i}" for i, took in enumerate([True, *taken]) if took}
