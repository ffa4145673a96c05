"""The prediction log: every served prediction written to the ``predictions`` table, off the request path.

Requests append rows to a bounded in-memory buffer and return; a background thread writes them in
batches. When the store is down the rows stay buffered and the writer retries with a backoff;
when the buffer is full, new rows are refused and counted as dropped. Rows still buffered when
the process stops after a last flush attempt are counted as dropped too, so every row is either
written or counted: ``accepted == written + queued`` and ``offered == accepted + dropped``.
Writes are idempotent (insert, ignore an id already there), so a batch whose commit was lost
in transit can be sent again safely.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from monitoring.db import get_engine, is_sqlite
from monitoring.feedback import label_text

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 5.0
_LOW_62 = (1 << 62) - 1


@dataclass
class LogStats:
    accepted: int = 0
    written: int = 0
    dropped: int = 0
    write_errors: int = 0
    store_ok: bool = True
    last_error: str | None = None


def new_prediction_id() -> str:
    """A time-ordered UUID (the version-7 layout: milliseconds since the epoch, then 74 random bits).

    Ids that grow with time are appended at the end of the primary-key index; random ones
    (uuid4) land on a random page each, which made every logged row several times dearer.
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits, 74 used
    value = (millis << 80) | (0x7 << 76) | (((rand >> 62) & 0xFFF) << 64) | (0b10 << 62) | (rand & _LOW_62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


COLUMNS = ("id", "model_name", "model_version", "created_at", "features", "prediction", "score",
           "latency_ms", "status", "error", "source")
STATEMENT_ROWS = 1_000  # rows per INSERT statement (SQLite allows 32,766 parameters in one)

LogRow = tuple[Any, ...]
"""One prediction as the store binds it, in ``COLUMNS`` order: features already JSON text, the time
already in the store's form (see ``encode_rows``)."""


def encode_rows(sqlite_store: bool, *, model_name: str, model_version: int, created_at: datetime,
                ids: Sequence[str], features: Sequence[dict[str, Any]], predictions: Sequence[Any],
                scores: Sequence[float | None], latency_ms: float, status: str = "ok", error: str | None = None,
                source: str = "api") -> list[LogRow]:
    """One request's predictions as store-ready rows.

    The encoding happens here, once per request, rather than in the writer: the writer thread
    then holds Python's GIL only to hand whole batches to the driver, so it never stalls the
    request thread for long.
    """
    when = _sqlite_time(created_at) if sqlite_store else created_at
    dumps = orjson.dumps
    return [(pid, model_name, model_version, when, dumps(row).decode(), None if prediction is None else label_text(prediction),
             score, latency_ms, status, error, source)
            for pid, row, prediction, score in zip(ids, features, predictions, scores, strict=True)]


def insert_ignoring_duplicates(url: str, rows: Sequence[LogRow]) -> None:
    """Insert encoded rows in one transaction; a row whose id is already stored is skipped.

    Each statement carries many rows (one multi-row VALUES), so the driver releases the GIL once
    per statement instead of once per row; otherwise the request thread would wait for the
    writer again and again (the GIL convoy effect).
    """
    engine = get_engine(url)
    postgres = engine.dialect.name == "postgresql"
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    json_mark = f"CAST({mark} AS JSON)" if postgres else mark
    values = f"({', '.join(json_mark if c == 'features' else mark for c in COLUMNS)})"
    with engine.begin() as connection:
        for start in range(0, len(rows), STATEMENT_ROWS):
            chunk = rows[start:start + STATEMENT_ROWS]
            connection.exec_driver_sql(
                f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES {', '.join([values] * len(chunk))} "
                f"ON CONFLICT (id) DO NOTHING",
                tuple(itertools.chain.from_iterable(chunk)),
            )


_second_text: tuple[int, str] = (-1, "")  # the last whole second formatted, swapped in one assignment


def _sqlite_time(value: datetime) -> str:
    """Naive UTC in SQLAlchemy's SQLite DATETIME format (what tables.UTCDateTime writes and reads).

    Formatting a datetime costs microseconds on the request path, and a busy API logs thousands of
    rows a second within the same second: the date-and-time part is formatted once per second.
    """
    global _second_text
    utc = value.astimezone(UTC)
    second, text = _second_text  # read once: another thread may swap it meanwhile
    whole = int(utc.timestamp())
    if second != whole:
        text = utc.replace(microsecond=0, tzinfo=None).isoformat(" ")
        _second_text = (whole, text)
    return f"{text}.{utc.microsecond:06d}"


class PredictionLog:
    """A bounded buffer of prediction rows and the thread that writes it to the store."""

    def __init__(self, url: str, *, capacity: int, flush_rows: int, flush_seconds: float, writer=None):
        if capacity < 1 or flush_rows < 1:
            raise ValueError("the log buffer and its batches need room for at least one row")
        self.url = url
        self.sqlite_store = is_sqlite(url)
        self.capacity = capacity
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.stats = LogStats()
        self._write = writer or insert_ignoring_duplicates
        self._buffer: deque[LogRow] = deque()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one flusher at a time: the writer, or stop()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def queued(self) -> int:
        return len(self._buffer)

    def add_predictions(self, **fields: Any) -> int:
        """Encode one request's predictions (``encode_rows``'s fields) and buffer them; see ``add``."""
        return self.add(encode_rows(self.sqlite_store, **fields))

    def add(self, rows: list[LogRow]) -> int:
        """Buffer encoded rows for writing; returns how many were taken (the rest are counted as dropped)."""
        with self._lock:
            room = self.capacity - len(self._buffer)
            taken = rows if len(rows) <= room else rows[:max(room, 0)]
            self._buffer.extend(taken)
            self.stats.accepted += len(taken)
            self.stats.dropped += len(rows) - len(taken)
            full_batch = len(self._buffer) >= self.flush_rows
        if len(taken) < len(rows):
            log.warning("prediction log buffer full (%d rows): dropped %d row(s)", self.capacity,
                        len(rows) - len(taken))
        if full_batch:
            self._wake.set()
        return len(taken)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vigil-prediction-log", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the writer after a last attempt to write what is buffered; count what is left."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush(deadline=time.monotonic() + max(timeout, 0.0))
        with self._lock:
            left = len(self._buffer)
            self._buffer.clear()
            self.stats.dropped += left
            self.stats.accepted -= left
        if left:
            log.error("prediction log stopped with %d unwritten row(s) (store unreachable: %s); "
                      "they are counted as dropped", left, self.stats.last_error)

    def flush(self, deadline: float | None = None) -> bool:
        """Write buffered rows in batches; False when the store refused a batch (rows kept)."""
        with self._flushing:
            return self._flush(deadline)

    def _flush(self, deadline: float | None) -> bool:
        while self._buffer:
            if deadline is not None and time.monotonic() > deadline:
                return False
            with self._lock:
                batch = list(itertools.islice(self._buffer, 0, self.flush_rows))
            try:
                self._write(self.url, batch)
            except Exception as error:  # noqa: BLE001 - any store failure: keep the rows, retry later
                self.stats.write_errors += 1
                self.stats.last_error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                if self.stats.store_ok:
                    log.warning("prediction log: store unreachable, buffering (%s)", self.stats.last_error)
                self.stats.store_ok = False
                return False
            with self._lock:
                for _ in range(len(batch)):  # only this thread removes rows, from the left
                    self._buffer.popleft()
                self.stats.written += len(batch)
            if not self.stats.store_ok:
                log.info("prediction log: store reachable again, writing the buffered rows")
            self.stats.store_ok, self.stats.last_error = True, None
        return True

    def _run(self) -> None:
        backoff = self.flush_seconds
        while not self._stop.is_set():
            if self.stats.store_ok:
                self._wake.wait(self.flush_seconds)  # a full batch wakes the writer early
            else:
                self._stop.wait(backoff)  # store down: retry on the backoff, not on every request
            self._wake.clear()
            if self._stop.is_set():
                return
            if self.flush():
                backoff = self.flush_seconds
            else:
                backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF_SECONDS)
