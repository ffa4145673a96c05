"""Shadow scoring as the API sees it: each shadowed request handed to a worker process, never waited for.

After the champion's answer is computed, a request frames its body and the ids of the champion's
predictions (one orjson call) and appends them to a bounded queue; a sender thread writes the
queue down a non-blocking pipe to the shadow worker (monitoring/serving/shadow_worker.py), which
loads the challenger, scores and logs the rows. Nothing reaches the caller, and the challenger's
scoring runs on the interpreter of another process.

At most ``capacity`` jobs wait (in the queue, in the pipe and in the worker); beyond that a job is
dropped and counted, so a slow or stalled challenger never slows the champion. The worker starts
with the first shadowed request (an API without a shadow release runs none), is started again if
it dies (the jobs it held are counted as failed), and stops when the API does, after scoring what
it was sent.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pickle
import select
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson

from monitoring.serving.shadow_worker import ShadowJob, frame, job_frame

log = logging.getLogger(__name__)

__all__ = ["ShadowCounts", "ShadowJob", "ShadowScorer"]

PIPE_BYTES = 1 << 20
RESPAWN_SECONDS = 5.0  # a worker that keeps dying is started again at most this often
TICK_SECONDS = 0.05
# The sender gathers jobs this long and writes them in one call: woken per job, at thousands of
# requests a second it took turns with the request thread on the interpreter lock for each one.
GATHER_SECONDS = 0.02


@dataclass
class ShadowCounts:
    submitted: int = 0
    dropped: int = 0  # the queue was full
    scored: int = 0  # rows
    failed: int = 0  # jobs the challenger refused or failed on, or that a dying worker held


class ShadowScorer:
    """The bounded queue in front of the shadow worker process, and the thread that feeds it."""

    def __init__(self, settings: Any, *, capacity: int):
        self.settings = settings
        self.capacity = capacity
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._frames: deque[bytes] = deque()  # framed jobs not yet (wholly) in the pipe
        self._chunk: bytes | None = None  # the first frames joined, being written
        self._offset = 0  # bytes of the chunk already in the pipe
        self._popped = 0  # bytes of the chunk's frames already taken off the queue
        self._sent = 0  # jobs wholly written to the current worker
        self._submitted = self._dropped = 0
        self._done = {"jobs": 0, "scored": 0, "failed": 0}  # the current worker's last report
        self._retired = {"jobs": 0, "scored": 0, "failed": 0}  # of workers that exited
        self._tail = b""
        self._process: subprocess.Popen | None = None
        self._spawned_at = float("-inf")
        self._thread: threading.Thread | None = None

    @property
    def counts(self) -> ShadowCounts:
        with self._lock:
            self._read_reports()
            return ShadowCounts(self._submitted, self._dropped, self._retired["scored"] + self._done["scored"],
                                self._retired["failed"] + self._done["failed"])

    @property
    def queued(self) -> int:
        """Jobs waiting: in the queue, in the pipe, or in the worker."""
        with self._lock:
            self._read_reports()
            return self._waiting()

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None else process.pid

    def submit(self, job: ShadowJob) -> bool:
        """Queue a job without waiting; False (and counted) when the queue is full or not running."""
        data = job_frame(job)
        with self._lock:
            self._submitted += 1
            if self._thread is None or self._waiting() >= self.capacity:
                self._dropped += 1
                return False
            idle = not self._frames
            self._frames.append(data)
        if idle:  # a busy sender comes back for the new job by itself
            self._wake.set()
        return True

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="vigil-shadow", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Hand over the queue, let the worker score it (``timeout`` seconds at most), then stop it."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join()
        deadline = time.monotonic() + timeout
        with self._lock:
            process = self._process
            if process is None:
                return
            while self._frames and process.poll() is None and time.monotonic() < deadline:
                self._send()
                if self._frames:
                    select.select([], [process.stdin], [], TICK_SECONDS)
                    self._read_reports()
            with contextlib.suppress(OSError):
                process.stdin.close()
            while process.poll() is None and time.monotonic() < deadline:
                select.select([process.stdout], [], [], TICK_SECONDS)
                self._read_reports()
            if process.poll() is None:
                log.error("shadow: the worker did not stop in time; killing it")
                process.kill()
                process.wait()
            self._retire(process)
            self._frames.clear()

    # Everything below runs with self._lock held, except _run.

    def _waiting(self) -> int:
        return len(self._frames) + self._sent - self._done["jobs"]

    def _run(self) -> None:
        while not self._stop.is_set():
            process = self._process
            if self._frames and process is not None and process.poll() is None:
                if self._chunk is not None:  # the pipe was full: on as soon as it has room
                    select.select([], [process.stdin], [], TICK_SECONDS)
                else:
                    self._stop.wait(GATHER_SECONDS)
            else:
                self._wake.wait(TICK_SECONDS if self._frames else 1.0)
            self._wake.clear()
            with self._lock:
                process = self._process
                if process is not None and process.poll() is not None:
                    self._retire(process)
                if self._process is None and self._frames and time.monotonic() - self._spawned_at >= RESPAWN_SECONDS:
                    self._spawn()
                self._send()
                self._read_reports()

    def _spawn(self) -> None:
        self._spawned_at = time.monotonic()
        try:
            process = subprocess.Popen([sys.executable, "-m", "monitoring.serving.shadow_worker"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       start_new_session=True)  # Ctrl-C is for the API; it stops the worker
        except OSError as error:
            log.error("shadow: cannot start the worker process (%s); shadow jobs wait, then are dropped", error)
            return
        with contextlib.suppress(OSError):
            fcntl.fcntl(process.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        os.set_blocking(process.stdout.fileno(), False)
        process.stdin.write(frame(pickle.dumps(self.settings)))  # blocking: the pipe is empty
        process.stdin.flush()
        os.set_blocking(process.stdin.fileno(), False)
        self._process, self._tail = process, b""
        self._restart_chunk()
        self._done = {"jobs": 0, "scored": 0, "failed": 0}
        log.info("shadow: worker process %d started", process.pid)

    def _send(self) -> None:
        process = self._process
        if process is None or process.stdin.closed:
            return
        fd = process.stdin.fileno()
        while self._frames:
            if self._chunk is None:
                self._chunk = b"".join(self._frames)
            try:
                self._offset += os.write(fd, memoryview(self._chunk)[self._offset:])
            except BlockingIOError:
                return
            except OSError:
                return  # the worker is gone; the thread notices and starts another
            while self._frames and self._popped + len(self._frames[0]) <= self._offset:
                self._popped += len(self._frames.popleft())
                self._sent += 1
            if self._offset < len(self._chunk):
                return  # the pipe is full
            self._chunk, self._offset, self._popped = None, 0, 0

    def _restart_chunk(self) -> None:
        """A new worker gets the queue from its first whole frame (a partly written one again)."""
        self._sent, self._chunk, self._offset, self._popped = 0, None, 0, 0

    def _read_reports(self) -> None:
        process = self._process
        if process is None or process.stdout.closed:
            return
        chunks = [self._tail]
        while True:
            try:
                chunk = os.read(process.stdout.fileno(), 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        lines = b"".join(chunks).split(b"\n")
        self._tail = lines.pop()
        for line in reversed(lines):
            if line:
                self._done = orjson.loads(line)
                break

    def _retire(self, process: subprocess.Popen) -> None:
        """Fold an exited worker's counts into the totals; the jobs it held count as failed."""
        self._read_reports()
        lost = self._sent - self._done["jobs"]
        if lost:
            log.error("shadow: the worker exited (status %s) holding %d job(s); they count as failed",
                      process.returncode, lost)
        self._retired["jobs"] += self._done["jobs"] + lost
        self._retired["scored"] += self._done["scored"]
        self._retired["failed"] += self._done["failed"] + lost
        for pipe in (process.stdin, process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()
        self._process = None
        self._restart_chunk()
        self._done = {"jobs": 0, "scored": 0, "failed": 0}
