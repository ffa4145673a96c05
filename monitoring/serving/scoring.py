"""How a request's rows reach the champion: inline, in a thread, or through the micro-batcher.

The compiled linear fast path costs microseconds: it runs inline, on the event loop, where a
thread hop would cost more than the scoring. Any other model runs off the event loop: through
the micro-batcher (``VIGIL_MICRO_BATCHING=auto``, the default, batches exactly these models;
``on`` batches every model, ``off`` none, and then each request is scored in a worker thread).
Either way a request waits at most ``VIGIL_PREDICT_TIMEOUT_SECONDS`` for its answer.

In the scoring threads the model libraries' OpenMP and BLAS pools are limited to
``VIGIL_MODEL_THREADS`` (1): a call on a few rows spread over threads that compete with the API's
own is far slower (measured: a 100-tree HistGradientBoosting on one row, 15 ms of CPU with
OpenMP on two busy cores, 1 ms on one thread). The limit is set again when a thread first scores
a new champion, which may have loaded libraries of its own.
"""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from typing import Any

from monitoring.serving.champion import Champion
from monitoring.serving.micro_batch import MicroBatcher, ScoringTimeout
from monitoring.settings import Settings


class ChampionScoring:
    def __init__(self, settings: Settings):
        self.mode = settings.micro_batching
        self.timeout = settings.predict_timeout_seconds
        self.model_threads = settings.model_threads
        self._local = threading.local()  # per scoring thread: the champion its limit was set for
        self.batcher = MicroBatcher(max_wait=settings.micro_batch_wait_ms / 1000.0,
                                    max_rows=settings.micro_batch_max_rows,
                                    max_queue=settings.micro_batch_queue, timeout=self.timeout)

    def start(self) -> None:
        if self.mode != "off":
            self.batcher.start()

    def stop(self) -> None:
        self.batcher.stop()

    def batched(self, champion: Champion) -> bool:
        return self.mode == "on" or (self.mode == "auto" and champion.scorer is None)

    async def score(self, champion: Champion, rows: list[dict[str, Any]]) -> tuple[list, list]:
        """Labels and scores of checked rows; raises what the model raised, ``Overloaded`` or
        ``ScoringTimeout``."""
        if self.batched(champion):
            return await self.batcher.score(champion, partial(self._score_in_thread, champion), rows)
        if champion.scorer is not None:
            return champion.predict(rows)
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._score_in_thread, champion, rows),
                                          self.timeout)
        except TimeoutError:
            raise ScoringTimeout(f"the model did not answer within {self.timeout:g} s") from None

    def _score_in_thread(self, champion: Champion, rows: list[dict[str, Any]]) -> tuple[list, list]:
        if self.model_threads and getattr(self._local, "champion", None) is not champion:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=self.model_threads)
            self._local.champion = champion
        return champion.predict(rows)
