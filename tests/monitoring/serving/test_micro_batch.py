"""The micro-batcher's logic with plain scoring functions: gathering, splitting, isolation of a
failing request, the queue bound and the timeout."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from monitoring.serving.micro_batch import MicroBatcher, Overloaded, ScoringTimeout


class Model:
    """Doubles ``x``; costs ``seconds`` per call whatever the rows; fails on a row with x < 0."""

    def __init__(self, seconds: float = 0.0, wrong_rows: bool = False):
        self.seconds = seconds
        self.wrong_rows = wrong_rows
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, rows):
        with self.lock:
            self.calls.append(len(rows))
        time.sleep(self.seconds)
        if any(row["x"] < 0 for row in rows):
            raise ValueError("negative x")
        labels = [row["x"] * 2 for row in rows]
        return (labels[1:], labels[1:]) if self.wrong_rows else (labels, [float(v) for v in labels])


def _run(batcher: MicroBatcher, coroutine):
    batcher.start()
    try:
        return asyncio.run(coroutine)
    finally:
        batcher.stop()


def test_concurrent_requests_are_scored_together_and_each_gets_its_own_rows():
    model = Model(seconds=0.02)
    batcher = MicroBatcher(max_wait=0.005)

    async def main():
        return await asyncio.gather(*(batcher.score(model, model, [{"x": i}, {"x": i + 0.5}])
                                      for i in range(40)))

    answers = _run(batcher, main())
    assert answers == [([2 * i, 2 * i + 1], [2.0 * i, 2.0 * i + 1]) for i in range(40)]
    assert sum(model.calls) == 80 and len(model.calls) < 10
    assert batcher.stats.requests == 40 and batcher.stats.batches == len(model.calls)


def test_a_lone_request_is_not_held_back_for_the_wait():
    model = Model()
    batcher = MicroBatcher(max_wait=0.5)

    async def main():
        started = time.perf_counter()
        await batcher.score(model, model, [{"x": 1}])
        return time.perf_counter() - started

    assert _run(batcher, main()) < 0.25


def test_a_failing_request_fails_alone_and_the_others_are_answered():
    model = Model(seconds=0.01)
    batcher = MicroBatcher(max_wait=0.01)

    async def main():
        return await asyncio.gather(*(batcher.score(model, model, [{"x": -1 if i == 3 else i}])
                                      for i in range(8)), return_exceptions=True)

    answers = _run(batcher, main())
    assert isinstance(answers[3], ValueError)
    assert [a for i, a in enumerate(answers) if i != 3] == [([2 * i], [2.0 * i]) for i in range(8) if i != 3]


def test_a_wrong_number_of_rows_is_an_error_for_the_request():
    model = Model(wrong_rows=True)
    batcher = MicroBatcher()

    with pytest.raises(ValueError, match="returned 1 predictions for 2 rows"):
        _run(batcher, batcher.score(model, model, [{"x": 1}, {"x": 2}]))


def test_requests_for_different_versions_are_scored_apart():
    old, new = Model(seconds=0.01), Model(seconds=0.01)
    batcher = MicroBatcher(max_wait=0.01)

    async def main():
        return await asyncio.gather(*(batcher.score(m, m, [{"x": i}]) for i, m in
                                      enumerate([old, new] * 5)))

    _run(batcher, main())
    assert sum(old.calls) == 5 and sum(new.calls) == 5


def test_a_slow_model_times_out_and_a_full_queue_refuses_at_once():
    model = Model(seconds=0.5)
    batcher = MicroBatcher(max_queue=1, timeout=0.2)

    async def main():
        first = asyncio.ensure_future(batcher.score(model, model, [{"x": 1}]))
        await asyncio.sleep(0.05)  # the first is being scored; one more fits in the queue
        second = asyncio.ensure_future(batcher.score(model, model, [{"x": 2}]))
        await asyncio.sleep(0)
        started = time.perf_counter()
        with pytest.raises(Overloaded):
            await batcher.score(model, model, [{"x": 3}])
        refused_after = time.perf_counter() - started
        results = await asyncio.gather(first, second, return_exceptions=True)
        return refused_after, results

    refused_after, (first, second) = _run(batcher, main())
    assert refused_after < 0.05
    assert isinstance(first, ScoringTimeout) and isinstance(second, ScoringTimeout)
    assert "within 0.2 s" in str(first)
    assert batcher.stats.refused == 1 and batcher.stats.timeouts == 2
