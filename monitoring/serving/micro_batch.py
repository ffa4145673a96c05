"""Adaptive micro-batching: concurrent requests scored as one call of the model, in one thread.

A model that costs milliseconds per call whatever the number of rows (a gradient-boosting
ensemble, a pyfunc with per-call overhead) answers N concurrent single-row requests about N
times faster in one batch. Requests are put on a bounded queue; one scoring thread takes the
first, then gathers more for at most ``max_wait`` seconds, but only while fewer requests have
arrived than went into the previous batch (so a lone request is never held back, and under load
the batch grows to the number of clients waiting), and up to ``max_rows`` rows. Requests for
different champions (an alias move mid-batch) are scored separately, each answer from the
version its request read. When a batch fails, its requests are scored one by one, so one bad
request fails alone. The event loop is never blocked: a request awaits its own future, with a
timeout; a full queue refuses at once (``Overloaded``).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Score = Callable[[list[dict[str, Any]]], tuple[list[Any], list[Any]]]


class Overloaded(RuntimeError):
    """The queue of requests waiting for the model is full."""


class ScoringTimeout(TimeoutError):
    """The model did not answer a request in time."""


@dataclass
class _Request:
    key: Any  # requests with the same key are scored by the same function
    score: Score
    rows: list[dict[str, Any]]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


@dataclass
class BatchStats:
    batches: int = 0
    requests: int = 0
    rows: int = 0
    timeouts: int = 0
    refused: int = 0


@dataclass
class MicroBatcher:
    max_wait: float = 0.002  # seconds a batch waits for more requests, at most
    max_rows: int = 256
    max_queue: int = 1024  # requests waiting; more are refused
    timeout: float = 10.0  # seconds a request waits for its answer
    stats: BatchStats = field(default_factory=BatchStats)

    def __post_init__(self) -> None:
        self._queue: queue.Queue[_Request | None] = queue.Queue(self.max_queue)
        self._thread: threading.Thread | None = None
        self._previous_size = 1

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vigil-micro-batcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return  # a daemon thread stuck in the model: the process exits without it
        self._thread.join(timeout)
        self._thread = None

    async def score(self, key: Any, score: Score, rows: list[dict[str, Any]]) -> tuple[list, list]:
        """``score(rows)``, batched with other requests for the same ``key``."""
        loop = asyncio.get_running_loop()
        request = _Request(key, score, rows, loop.create_future(), loop)
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self.stats.refused += 1
            raise Overloaded(f"{self.max_queue} requests are already waiting for the model") from None
        try:
            return await asyncio.wait_for(request.future, self.timeout)
        except TimeoutError:
            self.stats.timeouts += 1
            raise ScoringTimeout(f"the model did not answer within {self.timeout:g} s") from None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            self._previous_size = len(batch)
            for group in _groups(batch):
                self._score(group)
            if stop:
                return

    def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        batch, rows = [first], len(first.rows)
        deadline = time.monotonic() + self.max_wait
        while rows < self.max_rows:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if len(batch) >= self._previous_size or left <= 0:
                    break
                try:
                    request = self._queue.get(timeout=left)
                except queue.Empty:
                    break
            if request is None:
                return batch, True
            batch.append(request)
            rows += len(request.rows)
        return batch, False

    def _score(self, group: list[_Request]) -> None:
        group = [r for r in group if not r.future.done()]  # timed out while queued: skip
        if not group:
            return
        rows = [row for request in group for row in request.rows]
        self.stats.batches += 1
        self.stats.requests += len(group)
        self.stats.rows += len(rows)
        try:
            labels, scores = group[0].score(rows)
            if len(labels) != len(rows) or len(scores) != len(rows):
                raise ValueError(f"the model returned {len(labels)} predictions for {len(rows)} rows")
        except Exception as error:  # noqa: BLE001 - handed to the request(s), which answer it
            if len(group) == 1:
                _deliver([(group[0], None, error)])
            else:  # one bad request must not fail the others: score them one by one
                for request in group:
                    self._score([request])
            return
        results, start = [], 0
        for request in group:
            end = start + len(request.rows)
            results.append((request, (labels[start:end], scores[start:end]), None))
            start = end
        _deliver(results)


def _groups(batch: list[_Request]) -> list[list[_Request]]:
    groups: dict[int, list[_Request]] = {}
    for request in batch:
        groups.setdefault(id(request.key), []).append(request)
    return list(groups.values())


def _deliver(results: list[tuple[_Request, Any, BaseException | None]]) -> None:
    """Resolve the futures in their event loop (one wake-up per loop, not per request)."""
    by_loop: dict[int, list] = {}
    for item in results:
        by_loop.setdefault(id(item[0].loop), []).append(item)
    for items in by_loop.values():
        try:
            items[0][0].loop.call_soon_threadsafe(_resolve, items)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.debug("dropped %d answers for a closed event loop", len(items))


def _resolve(items: list[tuple[_Request, Any, BaseException | None]]) -> None:
    for request, result, error in items:
        if request.future.done():
            continue
        if error is not None:
            request.future.set_exception(error)
        else:
            request.future.set_result(result)
