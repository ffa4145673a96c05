"""The shadow worker: a child process of an API process that scores a shadow release's challenger.

The API answers with the champion and hands each shadowed request here (monitoring/serving/shadow.py);
this process loads the challenger version itself, checks each body against the challenger's own
input schema, scores what has arrived in one model call, and logs the rows as ``role='shadow'``,
each with the champion prediction it shadowed as ``paired_id`` (the labels arrive for that id),
through a prediction log of its own. In the API process a scoring thread took turns with the
requests on Python's interpreter lock; here it runs at the lowest CPU priority (its log shipper
too), so on a busy machine the champion keeps its cores and the shadow drops what it cannot
score, counted.

A challenger that fails logs its rows with ``status='error'``; one that cannot be loaded fails
every job sent to it (and is tried again after ``RELOAD_SECONDS``). A row's latency is the
challenger's time to score the batch it was in. Its features are logged as ``{}``: they are its
paired champion row's, which the store already holds.

Protocol, on inherited pipes (frames of a 4-byte big-endian length and a body):
- stdin: first the API's settings (a pickle: the pipe is private to the two processes, so the
  store's URL and MLflow's credentials are on no command line and in no environment), then one
  orjson array per job: ``[model_name, version, payload, paired_ids, client, key_id]``. End of
  file: the API is stopping; what has arrived is scored and logged, then the process exits.
- stdout: JSON lines with cumulative counts (``jobs`` done, ``scored`` rows, ``failed`` jobs).

    python -m monitoring.serving.shadow_worker
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from monitoring.serving.input_schema import InputError
from monitoring.store.engine import utcnow
from monitoring.store.prediction_rows import new_prediction_id

log = logging.getLogger("vigil.shadow_worker")

HEADER = struct.Struct(">I")
SHADOW = "shadow"
COLLECT_SECONDS = 0.02  # after a job arrives, how long the next ones may take to join its batch
RELOAD_SECONDS = 30.0  # a challenger that could not be loaded is tried again after this long
READ_BYTES = 1 << 20
NICENESS = 19  # the champion's requests come first: on a busy machine the shadow takes what is left


@dataclass(frozen=True)
class ShadowJob:
    challenger: Any  # a loaded version (monitoring.serving.champion.Champion)
    payload: Any  # the request's parsed body: one row (an object) or a batch (a list)
    paired_ids: list[str]  # the champion's prediction ids, row by row
    client: str | None
    key_id: int | None


def frame(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


def job_frame(job: ShadowJob) -> bytes:
    """One job as this process reads it: the challenger by name and version, not the loaded model."""
    return frame(orjson.dumps([job.challenger.model_name, job.challenger.version, job.payload, job.paired_ids,
                               job.client, job.key_id], option=orjson.OPT_SERIALIZE_NUMPY))


class FrameReader:
    """Frames out of a byte stream that arrives in pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._buffer += data
        while len(self._buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer)
            if len(self._buffer) < HEADER.size + size:
                return
            body = bytes(self._buffer[HEADER.size:HEADER.size + size])
            del self._buffer[:HEADER.size + size]
            yield body


class ShadowScoring:
    """Jobs scored by their challengers (one model call per challenger) and logged as shadow rows."""

    def __init__(self, prediction_log: Any | None, *, max_rows: int, max_string_chars: int):
        self.log = prediction_log
        self.max_rows = max_rows
        self.max_string_chars = max_string_chars
        self.jobs = self.scored = self.failed = 0

    def counts(self) -> dict[str, int]:
        return {"jobs": self.jobs, "scored": self.scored, "failed": self.failed}

    def score(self, jobs: list[ShadowJob]) -> None:
        by_challenger: dict[int, list[ShadowJob]] = {}
        for job in jobs:
            by_challenger.setdefault(id(job.challenger), []).append(job)
        for group in by_challenger.values():
            self._score_group(group[0].challenger, group)
        self.jobs += len(jobs)

    def fail(self, jobs: list[ShadowJob], message: str) -> None:
        """Jobs whose challenger could not be loaded: each logged as failed rows."""
        started, created_at = time.perf_counter(), utcnow()
        for job in jobs:
            self._failed(job, created_at, started, message)
        self.jobs += len(jobs)

    def _score_group(self, challenger: Any, jobs: list[ShadowJob]) -> None:
        started = time.perf_counter()
        created_at = utcnow()
        checked: list[tuple[ShadowJob, list[dict[str, Any]]]] = []
        for job in jobs:
            try:
                rows, _ = challenger.schema.rows(job.payload, self.max_rows, self.max_string_chars)
            except InputError as error:
                self._failed(job, created_at, started, f"InputError: {error}")
                continue
            checked.append((job, rows))
        if not checked:
            return
        try:
            labels, scores = challenger.predict([row for _, rows in checked for row in rows])
        except Exception as error:  # noqa: BLE001 - a challenger's failure is evidence, logged
            message = f"{type(error).__name__}: {error}"[:2000]
            log.warning("shadow: %s version %s failed: %s", challenger.model_name, challenger.version, message)
            for job, _ in checked:
                self._failed(job, created_at, started, message)
            return
        latency_ms = (time.perf_counter() - started) * 1000.0
        start = 0
        for job, rows in checked:
            end = start + len(rows)
            self._log(job, created_at, latency_ms, labels[start:end], scores[start:end])
            start = end
        self.scored += len(labels)

    def _failed(self, job: ShadowJob, created_at, started: float, message: str) -> None:
        self.failed += 1
        n = len(job.paired_ids)
        self._log(job, created_at, (time.perf_counter() - started) * 1000.0, [None] * n, [None] * n,
                  status="error", error=message)

    def _log(self, job: ShadowJob, created_at, latency_ms: float, labels: list, scores: list,
             status: str = "ok", error: str | None = None) -> None:
        if self.log is None:
            return
        n = min(len(labels), len(job.paired_ids))
        self.log.add_predictions(model_name=job.challenger.model_name, model_version=job.challenger.version,
                                 created_at=created_at, ids=[new_prediction_id() for _ in range(n)],
                                 features=[{}] * n, predictions=labels[:n], scores=scores[:n],
                                 latency_ms=latency_ms, status=status, error=error, client=job.client,
                                 key_id=job.key_id, role=SHADOW, paired_ids=job.paired_ids[:n])


class Challengers:
    """The versions loaded so far, by (model, version); a failed load is remembered for a while."""

    def __init__(self, load: Callable[[str, int], Any]):
        self._load = load
        self._loaded: dict[tuple[str, int], Any] = {}
        self._failed: dict[tuple[str, int], tuple[float, str]] = {}

    def get(self, model_name: str, version: int) -> Any:
        """The loaded version, or the reason it could not be loaded (a str)."""
        key = (model_name, version)
        if key in self._loaded:
            return self._loaded[key]
        failed = self._failed.get(key)
        if failed is not None and time.monotonic() - failed[0] < RELOAD_SECONDS:
            return failed[1]
        try:
            self._loaded[key] = self._load(model_name, version)
        except Exception as error:  # noqa: BLE001 - any load failure fails its jobs, with the reason
            reason = f"challenger {model_name} v{version} could not be loaded: {type(error).__name__}: {error}"[:2000]
            log.error("shadow: %s", reason)
            self._failed[key] = (time.monotonic(), reason)
            return reason
        self._failed.pop(key, None)
        return self._loaded[key]


def serve(fd: int, reader: FrameReader, scoring: ShadowScoring, challengers: Challengers,
          report: Callable[[dict[str, int]], None]) -> None:
    """Read jobs until end of file, scoring each batch of what has arrived."""
    ended = False
    while not ended:
        bodies, ended = _next_batch(fd, reader)
        by_version: dict[tuple[str, int], list[list[Any]]] = {}
        for body in bodies:
            model_name, version, *rest = orjson.loads(body)
            by_version.setdefault((model_name, version), []).append(rest)
        for (model_name, version), items in by_version.items():
            challenger = challengers.get(model_name, version)
            if isinstance(challenger, str):
                scoring.fail([ShadowJob(_Named(model_name, version), *item) for item in items], challenger)
            else:
                scoring.score([ShadowJob(challenger, *item) for item in items])
        if bodies:
            report(scoring.counts())


@dataclass(frozen=True)
class _Named:
    """A version that could not be loaded, as far as logging its failed rows needs it."""

    model_name: str
    version: int


def _next_batch(fd: int, reader: FrameReader) -> tuple[list[bytes], bool]:
    """The jobs that arrive within COLLECT_SECONDS of the first one, and whether stdin ended."""
    bodies = list(reader.feed(b""))  # what arrived with the settings
    deadline = time.monotonic() + COLLECT_SECONDS if bodies else None
    while True:
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0)
        readable, _, _ = select.select([fd], [], [], timeout)
        if not readable:
            return bodies, False
        data = os.read(fd, READ_BYTES)
        if not data:
            return bodies, True
        bodies.extend(reader.feed(data))
        if bodies and deadline is None:
            deadline = time.monotonic() + COLLECT_SECONDS


def _read_settings(fd: int, reader: FrameReader) -> Any:
    while True:
        data = os.read(fd, READ_BYTES)
        if not data:
            raise SystemExit(0)  # the API stopped before it sent anything
        for body in reader.feed(data):
            return pickle.loads(body)  # noqa: S301 - from the parent process, over a private pipe


def _stdout_reporter(fd: int) -> Callable[[dict[str, int]], None]:
    def report(counts: dict[str, int]) -> None:
        with contextlib.suppress(BlockingIOError):  # the next line carries the same counts and more
            os.write(fd, orjson.dumps(counts) + b"\n")
    return report


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the API stops this process by closing its stdin
    os.nice(NICENESS)
    fd, reader = sys.stdin.fileno(), FrameReader()
    settings = _read_settings(fd, reader)
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.serving.champion import load_champion
    from monitoring.serving.prediction_log import PredictionLog

    if settings.model_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=settings.model_threads)
    registry = Registry(settings)
    prediction_log = PredictionLog(settings.database_url, capacity=settings.log_buffer_rows,
                                   flush_rows=settings.log_flush_rows,
                                   flush_seconds=settings.log_flush_seconds) if settings.prediction_logging else None
    if prediction_log is not None:
        prediction_log.start()
    os.set_blocking(sys.stdout.fileno(), False)
    scoring = ShadowScoring(prediction_log, max_rows=settings.max_batch_rows,
                            max_string_chars=settings.max_string_feature_chars)
    try:
        serve(fd, reader, scoring, Challengers(lambda name, version: load_champion(registry, name, version)),
              _stdout_reporter(sys.stdout.fileno()))
    finally:
        if prediction_log is not None:
            prediction_log.stop()
    _stdout_reporter(sys.stdout.fileno())(scoring.counts())
    return 0


if __name__ == "__main__":
    sys.exit(main())
