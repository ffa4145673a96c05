"""Benchmark: the release judge's decisions over simulated releases, against a naive judge.

    .venv/bin/python benchmarks/release_decisions_benchmark.py [--releases 1000] [--seed 0]

Each release draws a challenger that is good (2 points fewer errors), equal, or bad (at the
margin, 3 points more errors, or clearly bad, 15 points more), a third each of good, equal and
bad (half of the bad at the margin, half clearly bad). The champion errs on 10 % of the requests.
Labels arrive at 20 per second in arrival order; the watchdog looks every 2 seconds (every 40
labels), as ``vigil watch --interval 2`` does, until a verdict or the cap of 50,000 challenger
labels. Canary: 10 % of the requests go to the challenger; shadow: every request is scored by
both (independent errors).

The production judge (``monitoring.watchdog.challenger_judge``, default policy: margin 0.03,
alpha 0.001 to promote, 0.01 to abort) is compared with a naive judge that peeks at every look
with a fixed-sample z-test at 95 % (promote when the challenger's error rate is not significantly
higher, after the same 200 labels; abort when significantly higher, after 30): what a dashboard
threshold amounts to. Wrong promotions (a challenger worse by the margin or more promoted), wrong
aborts (a good or equal challenger aborted) per 1,000 releases, inconclusive share, and median
challenger labels to a verdict.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring.watchdog.challenger_judge import (  # noqa: E402 - after the path fix-up
    ABORT,
    CONTINUE,
    INCONCLUSIVE,
    PROMOTE,
    ArmCounts,
    JudgePolicy,
    PairCounts,
    ServiceCounts,
    Verdict,
    judge_canary,
    judge_shadow,
)

BASE = 0.10
KINDS = {"good": -0.02, "equal": 0.0, "at margin": 0.03, "clearly bad": 0.15}
LOOK_LABELS = 40
POLICY = JudgePolicy()
QUIET = ServiceCounts()


def naive_canary(arms: ArmCounts, policy: JudgePolicy) -> str:
    """Peeking fixed-sample z-test: what a threshold on a dashboard chart amounts to."""
    if arms.challenger_labels < policy.min_abort_labels or arms.champion_labels == 0:
        return CONTINUE
    pa, pb = arms.champion_errors / arms.champion_labels, arms.challenger_errors / arms.challenger_labels
    pooled = (arms.champion_errors + arms.challenger_errors) / (arms.champion_labels + arms.challenger_labels)
    se = math.sqrt(max(pooled * (1 - pooled), 1e-9) * (1 / arms.champion_labels + 1 / arms.challenger_labels))
    if (pb - pa) / se > 1.96:
        return ABORT
    if arms.challenger_labels >= policy.min_promote_labels:
        return PROMOTE
    return CONTINUE


def naive_shadow(pairs: PairCounts, policy: JudgePolicy) -> str:
    if pairs.pairs < policy.min_abort_labels:
        return CONTINUE
    discordant = pairs.only_challenger_wrong + pairs.only_champion_wrong
    if discordant and (pairs.only_challenger_wrong - pairs.only_champion_wrong) / math.sqrt(discordant) > 1.96:
        return ABORT
    return PROMOTE if pairs.pairs >= policy.min_promote_labels else CONTINUE


def run_release(delta: float, rng: random.Random, *, shadow: bool,
                judge: Callable[[ArmCounts | PairCounts], str]) -> tuple[str, int, float]:
    """(decision, challenger labels, minutes of traffic at 20 labels/s) of one release."""
    champion, challenger, pairs = [0, 0], [0, 0], [0, 0, 0]
    looks = 0
    while True:
        looks += 1
        for _ in range(LOOK_LABELS):
            champion_wrong = rng.random() < BASE
            if shadow:
                challenger_wrong = rng.random() < BASE + delta
                pairs[0] += 1
                pairs[1] += challenger_wrong and not champion_wrong
                pairs[2] += champion_wrong and not challenger_wrong
            elif rng.random() < 0.1:
                challenger[0] += 1
                challenger[1] += rng.random() < BASE + delta
            else:
                champion[0] += 1
                champion[1] += champion_wrong
        counts = PairCounts(pairs[0], pairs[1], pairs[2], 0, 0) if shadow else ArmCounts(*champion, *challenger)
        labels = pairs[0] if shadow else challenger[0]
        decision = judge(counts)
        minutes = looks * LOOK_LABELS / 20 / 60
        if decision != CONTINUE:
            return decision, labels, minutes
        if labels >= POLICY.max_labels:
            return INCONCLUSIVE, labels, minutes


def production(shadow: bool) -> Callable:
    def decide(counts) -> str:
        verdict: Verdict = (judge_shadow if shadow else judge_canary)(counts, QUIET, POLICY, baked=True)
        return verdict.decision
    return decide


def naive(shadow: bool) -> Callable:
    return (lambda counts: naive_shadow(counts, POLICY)) if shadow else (lambda counts: naive_canary(counts, POLICY))


def summarise(name: str, results: list[tuple[str, str, int, float]], releases: int) -> str:
    per = 1_000 / releases
    bad = [r for r in results if KINDS[r[0]] >= POLICY.margin]
    fine = [r for r in results if KINDS[r[0]] <= 0]
    wrong_promotions = sum(r[1] == PROMOTE for r in bad)
    wrong_aborts = sum(r[1] == ABORT for r in fine)
    inconclusive = sum(r[1] == INCONCLUSIVE for r in results)
    labels = [r[2] for r in results if r[1] != INCONCLUSIVE]
    minutes = [r[3] for r in results if r[1] != INCONCLUSIVE]
    by_kind = "; ".join(
        f"{kind}: " + "/".join(f"{sum(r[1] == d for r in results if r[0] == kind)}" for d in (PROMOTE, ABORT, INCONCLUSIVE))
        for kind in KINDS)
    return (f"{name:<28} wrong promotions {wrong_promotions * per:6.1f}/1000  wrong aborts {wrong_aborts * per:6.1f}/1000  "
            f"inconclusive {inconclusive / len(results):5.1%}  median challenger labels {statistics.median(labels):6.0f} "
            f"({statistics.median(minutes):4.1f} min)\n"
            f"{'':<28} promote/abort/inconclusive by kind: {by_kind}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    kinds = ["good", "equal", "at margin", "clearly bad"]
    plan = [kinds[i % 3] if i % 3 != 2 else kinds[2 + (i // 3) % 2] for i in range(args.releases)]
    print(f"{args.releases} releases per row: {plan.count('good')} good, {plan.count('equal')} equal, "
          f"{plan.count('at margin')} at the margin, {plan.count('clearly bad')} clearly bad; champion errs "
          f"on {BASE:.0%}; a look every {LOOK_LABELS} labels")
    for shadow in (False, True):
        mode = "shadow" if shadow else "canary 10%"
        for name, judge in ((f"Vigil's judge, {mode}", production(shadow)), (f"naive peeking, {mode}", naive(shadow))):
            rng = random.Random(args.seed)
            started = time.perf_counter()
            results = [(kind, *run_release(KINDS[kind], rng, shadow=shadow, judge=judge)) for kind in plan]
            print(summarise(name, results, args.releases) + f"  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
