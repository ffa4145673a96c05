"""The prediction log as the API sees it: every served prediction handed to a shipper process.

A request appends its predictions (each row's features as JSON text) to a list and returns;
every ``flush_rows`` rows (or every ``flush_seconds``, from a small timer thread) the list goes as
one orjson frame down a non-blocking pipe to the shipper (monitoring/log_shipper.py), which
encodes, buffers and writes them to the store. The API process thus spends a few microseconds per row on logging, all of it in orjson's C
code and a list append; the store's driver never runs in it.

Every row is either written or counted. Up to ``capacity`` rows wait in the API process (when
the shipper cannot keep up, is restarting, or is not running) and up to ``capacity`` more in the
shipper (while the store is down); beyond that rows are dropped and counted. A shipper that dies
is started again and the rows it held are counted as dropped. At shutdown the API hands over
what it holds and closes the pipe; the shipper tries for ``drain_seconds`` to write it, and
what it could not write is counted as dropped. So ``accepted == written + queued`` and
``offered == accepted + dropped`` hold at any time.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from monitoring.serving.log_shipper import URL_VARIABLE, ShipperCounts, frame

log = logging.getLogger(__name__)

RESPAWN_SECONDS = 5.0  # a shipper that keeps dying is started again at most this often
PIPE_BYTES = 1 << 20  # what an unprivileged process may ask for (/proc/sys/fs/pipe-max-size)
STOP_GRACE_SECONDS = 5.0  # beyond its drain time, how long a stopping shipper may take to exit


@dataclass
class LogStats:
    offered: int
    accepted: int
    written: int
    dropped: int
    queued: int
    write_errors: int
    store_ok: bool
    last_error: str | None
    shipper_restarts: int


class PredictionLog:
    """Raw predictions batched in the API process and shipped to the process that writes them."""

    def __init__(self, url: str, *, capacity: int, flush_rows: int, flush_seconds: float,
                 drain_seconds: float = 10.0):
        if capacity < 1 or flush_rows < 1:
            raise ValueError("the log buffer and its batches need room for at least one row")
        self.url = url
        self.capacity = capacity
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.drain_seconds = drain_seconds
        self._lock = threading.Lock()
        self._pending: list[list[Any]] = []  # requests not yet framed
        self._pending_rows = 0
        self._frames: deque[tuple[bytes, int]] = deque()  # framed, not yet (wholly) in the pipe
        self._frame_offset = 0  # bytes of the first frame already in the pipe
        self._held_rows = 0  # rows in _pending and _frames
        self._offered = 0
        self._dropped_here = 0  # refused in this process, or held at shutdown
        self._shipped = 0  # rows wholly written to the current shipper's pipe
        self._retired = ShipperCounts()  # written / dropped / write_errors of shippers that exited
        self._counts = ShipperCounts()  # the current shipper's last report
        self._status_tail = b""
        self._process: subprocess.Popen | None = None
        self._restarts = 0
        self._spawned_at = 0.0
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    @property
    def stats(self) -> LogStats:
        with self._lock:
            self._read_reports()
            return self._stats()

    def add_predictions(self, *, model_name: str, model_version: int, created_at: datetime,
                        ids: Sequence[str], features: Sequence[dict[str, Any]], predictions: Sequence[Any],
                        scores: Sequence[float | None], latency_ms: float, status: str = "ok",
                        error: str | None = None, source: str = "api", client: str | None = None,
                        key_id: int | None = None, role: str = "champion",
                        paired_ids: Sequence[str] | None = None) -> int:
        """Hand over one request's predictions; returns how many rows were taken (the rest are counted as dropped).

        The lists line up row by row (``ValueError`` otherwise, and nothing is taken). ``role``: who
        produced them (champion, canary, shadow); ``paired_ids``: a shadow's rows, the ids of the
        champion's predictions they shadowed.
        """
        n = len(ids)
        if not len(features) == len(predictions) == len(scores) == n:
            raise ValueError(f"a request's ids, features, predictions and scores must line up; got "
                             f"{n}, {len(features)}, {len(predictions)} and {len(scores)}")
        if paired_ids is not None and len(paired_ids) != n:
            raise ValueError(f"a request's paired ids must line up with its ids; got {len(paired_ids)} for {n}")
        # Each row's JSON text made here costs the API about 1 us; parsing the rows back out of the
        # frame and serialising them again cost the shipper 5 us, on a machine whose cores it shares.
        features_json = [orjson.dumps(row).decode() for row in features]
        with self._lock:
            self._offered += n
            room = self.capacity - self._held_rows
            if n > room:
                taken = max(room, 0)
                ids, predictions, scores = ids[:taken], predictions[:taken], scores[:taken]
                features_json = features_json[:taken]
                paired_ids = None if paired_ids is None else paired_ids[:taken]
                self._dropped_here += n - taken
                log.warning("prediction log: %d rows wait for the shipper; dropped %d row(s)", self._held_rows, n - taken)
            else:
                taken = n
            if taken:
                self._pending.append([model_name, model_version, created_at, ids, features_json, predictions, scores,
                                      latency_ms, status, error, source, client, key_id, role,
                                      None if paired_ids is None else list(paired_ids)])
                self._pending_rows += taken
                self._held_rows += taken
                if self._pending_rows >= self.flush_rows:
                    self._frame_pending()
            if self._frames:  # one non-blocking write: the pipe takes what the shipper has read meanwhile
                self._send()
        return taken

    def start(self) -> None:
        """Start the shipper process and the timer that ships partial batches."""
        with self._lock:
            self._spawn()
        self._stop.clear()
        self._timer = threading.Thread(target=self._tick_until_stopped, name="vigil-prediction-log", daemon=True)
        self._timer.start()

    def stop(self) -> None:
        """Hand over everything, let the shipper write it (``drain_seconds`` at most), count what was not written."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        deadline = time.monotonic() + self.drain_seconds
        with self._lock:
            if self._pending:
                self._frame_pending()
            process = self._process
            if process is not None and process.poll() is None:
                while self._frames and time.monotonic() < deadline:
                    self._send()
                    if self._frames:
                        select.select([], [process.stdin], [], 0.05)
                        self._read_reports()  # the shipper must not wait on a full report pipe meanwhile
                process.stdin.close()
                self._wait_for_exit(process, deadline + STOP_GRACE_SECONDS)
            if process is not None:
                self._retire(process)
            unsent = self._held_rows
            self._frames.clear()
            self._pending.clear()
            self._held_rows = self._pending_rows = self._frame_offset = 0
            self._dropped_here += unsent
            stats = self._stats()
        if unsent:
            log.error("prediction log stopped with %d row(s) never handed to the shipper; they are counted as dropped",
                      unsent)
        log.info("prediction log stopped: %d row(s) written, %d dropped", stats.written, stats.dropped)

    # Everything below runs with self._lock held.

    def _stats(self) -> LogStats:
        current, retired = self._counts, self._retired
        written = retired.written + current.written
        dropped = self._dropped_here + retired.dropped + current.dropped
        queued = self._held_rows + self._shipped - current.written - current.dropped
        return LogStats(offered=self._offered, accepted=self._offered - dropped, written=written, dropped=dropped,
                        queued=queued, write_errors=retired.write_errors + current.write_errors,
                        store_ok=current.store_ok, last_error=current.last_error, shipper_restarts=self._restarts)

    def _frame_pending(self) -> None:
        self._frames.append((frame(self._pending), self._pending_rows))
        self._pending = []
        self._pending_rows = 0

    def _send(self) -> None:
        """Write framed batches into the pipe as far as it takes them without waiting."""
        process = self._process
        if process is None or process.stdin is None or process.stdin.closed:
            return
        fd = process.stdin.fileno()
        while self._frames:
            data, rows = self._frames[0]
            try:
                self._frame_offset += os.write(fd, memoryview(data)[self._frame_offset:])
            except BlockingIOError:
                return
            except (BrokenPipeError, OSError):
                return  # the shipper is gone; the timer notices, counts and starts another
            if self._frame_offset == len(data):
                self._frames.popleft()
                self._frame_offset = 0
                self._held_rows -= rows
                self._shipped += rows

    def _spawn(self) -> None:
        self._spawned_at = time.monotonic()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "monitoring.serving.log_shipper", "--capacity", str(self.capacity),
                 "--flush-rows", str(self.flush_rows), "--flush-seconds", str(self.flush_seconds),
                 "--drain-seconds", str(self.drain_seconds)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, URL_VARIABLE: self.url},
                start_new_session=True,  # Ctrl-C and group signals are for the API; it stops the shipper
            )
        except OSError as error:
            self._process = None
            log.error("prediction log: cannot start the shipper process (%s); rows wait in the API process", error)
            return
        with contextlib.suppress(OSError, AttributeError):  # Linux only; the default 64 KiB holds a third of a frame
            fcntl.fcntl(self._process.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        os.set_blocking(self._process.stdin.fileno(), False)
        os.set_blocking(self._process.stdout.fileno(), False)
        self._counts, self._shipped, self._status_tail = ShipperCounts(), 0, b""
        self._frame_offset = 0  # a frame cut short by the last shipper's death goes again whole

    def _read_reports(self) -> None:
        process = self._process
        if process is None or process.stdout is None or process.stdout.closed:
            return
        chunks = [self._status_tail]
        while True:
            try:
                chunk = os.read(process.stdout.fileno(), 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        data = b"".join(chunks)
        lines = data.split(b"\n")
        self._status_tail = lines.pop()
        for line in reversed(lines):
            if line:
                self._counts = ShipperCounts(**orjson.loads(line))
                break

    def _wait_for_exit(self, process: subprocess.Popen, deadline: float) -> None:
        while process.poll() is None and time.monotonic() < deadline:
            select.select([process.stdout], [], [], 0.05)
            self._read_reports()
        if process.poll() is None:
            log.error("prediction log: the shipper did not stop in time; killing it")
            process.kill()
            process.wait()
        self._read_reports()

    def _retire(self, process: subprocess.Popen) -> None:
        """Fold an exited shipper's counts into the totals; rows it was given but did not report are dropped."""
        self._read_reports()
        current = self._counts
        lost = self._shipped - current.written - current.dropped
        if lost:
            log.error("prediction log: the shipper exited (status %s) holding %d unwritten row(s); "
                      "they are counted as dropped", process.returncode, lost)
        self._retired.written += current.written
        self._retired.dropped += current.dropped + lost
        self._retired.write_errors += current.write_errors
        for pipe in (process.stdin, process.stdout):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()
        self._counts, self._shipped, self._process = ShipperCounts(store_ok=current.store_ok,
                                                                   last_error=current.last_error), 0, None

    def _tick_until_stopped(self) -> None:
        while True:
            process = self._process
            if self._frames and process is not None and process.poll() is None:
                select.select([], [process.stdin], [], self.flush_seconds)  # on with a backlog as soon as the pipe has room
            else:
                self._stop.wait(self.flush_seconds)
            if self._stop.is_set():
                return
            with self._lock:
                process = self._process
                if process is not None and process.poll() is not None:
                    self._retire(process)
                if self._process is None and time.monotonic() - self._spawned_at >= RESPAWN_SECONDS:
                    self._restarts += 1
                    self._spawn()
                if self._pending:
                    self._frame_pending()
                self._send()
                self._read_reports()
