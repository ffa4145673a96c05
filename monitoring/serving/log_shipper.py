"""The prediction-log shipper: a child process of each API process that writes its predictions to the store.

The API hands over raw predictions and goes back to serving; everything else (turning them into
rows, buffering, batching, the store's driver, retries while the store is down) happens here, on
the other core. In one process the writer thread and the request thread took turns on Python's
GIL, and logging cost a fifth of the API's throughput.

Protocol, all on inherited pipes:
- stdin: frames of a 4-byte big-endian length and an orjson array of requests, each a list in
  ``REQUEST_FIELDS`` order (one request's predictions). End of file: the API is stopping.
- stdout: JSON lines with cumulative counts (``written``, ``dropped``, ``write_errors``) and the
  store's state (``store_ok``, ``last_error``); the last line written before exit is final.
  The API reads them when asked for its stats; a line that cannot be written at once is skipped,
  since the next one carries the same counts and more.

Rows wait in a bounded buffer; beyond ``capacity`` new rows are dropped and counted. When the
store refuses a batch the rows stay and the write is retried with a backoff. At end of file the
shipper keeps trying for ``drain_seconds``, then counts what is left as dropped and exits.
The database URL comes in the environment (``VIGIL_LOG_STORE_URL``), never on the command line.

    python -m monitoring.serving.log_shipper --capacity N --flush-rows N --flush-seconds S --drain-seconds S
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import struct
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson

from monitoring.store.dialect import is_sqlite
from monitoring.store.prediction_rows import LogRow, encode_rows, insert_ignoring_duplicates

log = logging.getLogger("vigil.log_shipper")

URL_VARIABLE = "VIGIL_LOG_STORE_URL"
REQUEST_FIELDS = ("model_name", "model_version", "created_at", "ids", "features_json", "predictions", "scores",
                  "latency_ms", "status", "error", "source", "client", "key_id", "role", "paired_ids")
HEADER = struct.Struct(">I")
MAX_BACKOFF_SECONDS = 5.0
DROP_LOG_SECONDS = 10.0
READ_BYTES = 1 << 20


@dataclass
class ShipperCounts:
    written: int = 0
    dropped: int = 0
    write_errors: int = 0
    store_ok: bool = True
    last_error: str | None = None


def frame(requests: list[list[Any]]) -> bytes:
    """One batch of requests as the shipper reads it from its stdin."""
    payload = orjson.dumps(requests, option=orjson.OPT_SERIALIZE_NUMPY)
    return HEADER.pack(len(payload)) + payload


class FrameReader:
    """Reassembles frames from pipe reads of any size."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        self._data += chunk
        payloads = []
        start = 0
        while len(self._data) - start >= HEADER.size:
            (size,) = HEADER.unpack_from(self._data, start)
            end = start + HEADER.size + size
            if len(self._data) < end:
                break
            payloads.append(bytes(self._data[start + HEADER.size:end]))
            start = end
        del self._data[:start]
        return payloads


def decode_requests(payload: bytes, sqlite_store: bool) -> list[LogRow]:
    """A frame's requests as store-ready rows (``encode_rows``)."""
    rows: list[LogRow] = []
    for request in orjson.loads(payload):
        fields = dict(zip(REQUEST_FIELDS, request, strict=True))
        fields["created_at"] = datetime.fromisoformat(fields["created_at"])
        rows.extend(encode_rows(sqlite_store, **fields))
    return rows


class Shipper:
    """The buffer and the store writes; ``run`` drives it from the pipe."""

    def __init__(self, url: str, *, capacity: int, flush_rows: int, flush_seconds: float, drain_seconds: float,
                 report: Callable[[ShipperCounts, bool], None] | None = None):
        self.url = url
        self.sqlite_store = is_sqlite(url)
        self.capacity = capacity
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.drain_seconds = drain_seconds
        self.counts = ShipperCounts()
        self.buffer: deque[LogRow] = deque()
        self._report = report or (lambda counts, final: None)
        self._drops_logged = (0, -DROP_LOG_SECONDS)  # (dropped count, when) at the last warning

    def take(self, rows: list[LogRow]) -> None:
        room = self.capacity - len(self.buffer)
        taken = rows if len(rows) <= room else rows[:max(room, 0)]
        self.buffer.extend(taken)
        if len(taken) < len(rows):
            self.counts.dropped += len(rows) - len(taken)
            logged, when = self._drops_logged
            if time.monotonic() - when >= DROP_LOG_SECONDS:  # a full buffer drops every frame: one line now and then
                log.warning("buffer full (%d rows, store: %s): dropped %d row(s) since the last such line", self.capacity,
                            "reachable" if self.counts.store_ok else "unreachable", self.counts.dropped - logged)
                self._drops_logged = (self.counts.dropped, time.monotonic())
            self._report(self.counts, False)

    def write(self, deadline: float | None = None) -> bool:
        """Write buffered rows in batches; False when the store refused one (its rows are kept)."""
        while self.buffer:
            if deadline is not None and time.monotonic() > deadline:
                return False
            batch = [self.buffer[i] for i in range(min(self.flush_rows, len(self.buffer)))]
            try:
                insert_ignoring_duplicates(self.url, batch)
            except Exception as error:  # noqa: BLE001 - any store failure: keep the rows, retry later
                self.counts.write_errors += 1
                self.counts.last_error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                if self.counts.store_ok:
                    log.warning("store unreachable, buffering (%s)", self.counts.last_error)
                self.counts.store_ok = False
                self._report(self.counts, False)
                return False
            for _ in range(len(batch)):
                self.buffer.popleft()
            self.counts.written += len(batch)
            if not self.counts.store_ok:
                log.info("store reachable again, writing the buffered rows")
            self.counts.store_ok, self.counts.last_error = True, None
            self._report(self.counts, False)
        return True

    def run(self, fd: int) -> None:
        """Read frames until end of file, writing as batches fill or age; then drain and stop."""
        reader = FrameReader()
        backoff = self.flush_seconds
        next_write = time.monotonic() + self.flush_seconds
        while True:
            now = time.monotonic()
            full = len(self.buffer) >= self.flush_rows and self.counts.store_ok
            wait = 0.0 if full else max(next_write - now, 0.0) if self.buffer else self.flush_seconds
            if select.select([fd], [], [], wait)[0]:
                chunk = os.read(fd, READ_BYTES)
                if not chunk:
                    break
                for payload in reader.feed(chunk):
                    self.take(decode_requests(payload, self.sqlite_store))
            now = time.monotonic()
            if self.buffer and (now >= next_write or (len(self.buffer) >= self.flush_rows and self.counts.store_ok)):
                backoff = self.flush_seconds if self.write() else min(max(backoff * 2, 0.1), MAX_BACKOFF_SECONDS)
                next_write = time.monotonic() + backoff
        self.drain()

    def drain(self) -> None:
        """The last attempts to write what is buffered; what is still left is counted as dropped."""
        deadline = time.monotonic() + self.drain_seconds
        backoff = 0.1
        while not self.write(deadline) and time.monotonic() < deadline:
            time.sleep(min(backoff, max(deadline - time.monotonic(), 0.0)))
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        if self.buffer:
            log.error("stopping with %d unwritten row(s) (store unreachable: %s); they are counted as dropped",
                      len(self.buffer), self.counts.last_error)
            self.counts.dropped += len(self.buffer)
            self.buffer.clear()
        self._report(self.counts, True)


def _stdout_reporter(fd: int):
    os.set_blocking(fd, False)

    def report(counts: ShipperCounts, final: bool) -> None:
        line = orjson.dumps(asdict(counts)) + b"\n"  # under PIPE_BUF: written whole or not at all
        if final:
            os.set_blocking(fd, True)
        try:
            os.write(fd, line)
        except BlockingIOError:
            pass  # the API has not read the last lines yet; the next line carries these counts too
        except BrokenPipeError:
            pass  # the API is gone; the rows were still written

    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capacity", type=int, required=True)
    parser.add_argument("--flush-rows", type=int, required=True)
    parser.add_argument("--flush-seconds", type=float, required=True)
    parser.add_argument("--drain-seconds", type=float, required=True)
    options = parser.parse_args(argv)
    url = os.environ.get(URL_VARIABLE)
    if not url:
        parser.error(f"{URL_VARIABLE} (the store's URL) is not set")
    # Ctrl-C in a terminal reaches the whole process group; the API decides when this process stops
    # (by closing its stdin), so that the rows still buffered get their last chance to be written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s vigil.log_shipper[%(process)d]: %(message)s")
    shipper = Shipper(url, capacity=options.capacity, flush_rows=options.flush_rows,
                      flush_seconds=options.flush_seconds, drain_seconds=options.drain_seconds,
                      report=_stdout_reporter(sys.stdout.fileno()))
    shipper.run(sys.stdin.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
