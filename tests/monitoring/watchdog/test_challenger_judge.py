"""The challenger judge on counts: its rules, and its error rates over seeded simulated releases."""

from __future__ import annotations

import math
import random

import pytest

from monitoring.watchdog.challenger_judge import (
    ABORT,
    CONTINUE,
    INCONCLUSIVE,
    PROMOTE,
    ArmCounts,
    JudgePolicy,
    PairCounts,
    ServiceCounts,
    judge_canary,
    judge_shadow,
    log_e_value,
    log_mean_e_value,
)

POLICY = JudgePolicy()
QUIET = ServiceCounts()


def test_a_clearly_worse_canary_is_aborted_from_a_few_dozen_labels():
    verdict = judge_canary(ArmCounts(400, 40, 40, 24), QUIET, POLICY, baked=True)
    assert verdict.decision == ABORT and "more errors" in verdict.reason
    assert verdict.numbers["error rate difference"] == pytest.approx(0.5, abs=1e-3)


def test_below_the_minimum_labels_nothing_is_decided():
    assert judge_canary(ArmCounts(200, 20, 20, 20), QUIET, POLICY, baked=True).decision == CONTINUE  # 20 < 30


def test_promotion_needs_the_labels_and_the_bake_time():
    strong = ArmCounts(200_000, 20_000, 20_000, 1_600)  # 8 % against 10 %
    assert judge_canary(strong, QUIET, POLICY, baked=True).decision == PROMOTE
    waiting = judge_canary(strong, QUIET, POLICY, baked=False)
    assert waiting.decision == CONTINUE and "bake" in waiting.reason
    few = judge_canary(ArmCounts(200_000, 20_000, 600, 0), QUIET, JudgePolicy(min_promote_labels=1_000), baked=True)
    assert few.decision == CONTINUE and "600 of 1000" in few.reason


def test_at_the_cap_it_is_inconclusive_and_says_so():
    policy = JudgePolicy(max_labels=1_000)
    verdict = judge_canary(ArmCounts(9_000, 900, 1_000, 115), QUIET, policy, baked=True)
    assert verdict.decision == INCONCLUSIVE and "by hand" in verdict.reason


def test_a_slower_or_failing_challenger_is_aborted_on_service_alone():
    slow = ServiceCounts(1_000, 0, 20.0, 200, 0, 45.0)
    assert judge_canary(ArmCounts(0, 0, 0, 0), slow, POLICY, baked=True).decision == ABORT
    jittery = ServiceCounts(1_000, 0, 19.3, 200, 0, 34.8)  # twice as slow, but by 15 ms: not judged on it
    assert judge_canary(ArmCounts(0, 0, 0, 0), jittery, POLICY, baked=True).decision == CONTINUE
    failing = ServiceCounts(1_000, 1, 20.0, 200, 20, 21.0)
    verdict = judge_canary(ArmCounts(0, 0, 0, 0), failing, POLICY, baked=True)
    assert verdict.decision == ABORT and "fails 10.0%" in verdict.reason
    few = ServiceCounts(1_000, 0, 20.0, 50, 25, 90.0)  # under min_requests: not judged yet
    assert judge_canary(ArmCounts(0, 0, 0, 0), few, POLICY, baked=True).decision == CONTINUE


def test_a_shadow_decides_on_the_discordant_pairs_and_reports_agreement():
    worse = judge_shadow(PairCounts(300, 60, 5, 230, 300), QUIET, POLICY, baked=True)
    assert worse.decision == ABORT and worse.numbers["agreement"] == pytest.approx(230 / 300, abs=1e-4)
    same = judge_shadow(PairCounts(5_000, 20, 22, 4_950, 5_000), QUIET, POLICY, baked=True)
    assert same.decision == PROMOTE


def test_the_e_value_grows_with_evidence_against_the_null():
    rho = 1 / 0.03 ** 2
    assert log_e_value(0.0, 100.0, rho) < 0 < log_e_value(50.0, 1_000.0, rho)
    assert math.isfinite(log_e_value(-1e4, 1e4, rho))  # far in the tail, no underflow


def _simulated(delta: float, seed: int, *, shadow: bool, base: float = 0.10, share: float = 0.1) -> str:
    rng = random.Random(seed)
    champion = [0, 0]
    challenger = [0, 0]
    pairs = [0, 0, 0]
    while True:
        for _ in range(40):  # labels between two looks: 2 s of the watchdog at 20 labels/s
            a = rng.random() < base
            if shadow:
                b = rng.random() < base + delta
                pairs[0] += 1
                pairs[1] += b and not a
                pairs[2] += a and not b
            elif rng.random() < share:
                challenger[0] += 1
                challenger[1] += rng.random() < base + delta
            else:
                champion[0] += 1
                champion[1] += a
        if shadow:
            verdict = judge_shadow(PairCounts(pairs[0], pairs[1], pairs[2], 0, 0), QUIET, POLICY, baked=True)
        else:
            verdict = judge_canary(ArmCounts(*champion, *challenger), QUIET, POLICY, baked=True)
        if verdict.decision != CONTINUE:
            return verdict.decision


@pytest.mark.parametrize("shadow", [False, True])
def test_operating_characteristics_on_seeded_releases(shadow):
    """Bad challengers (10 points worse) are never promoted; equal ones rarely aborted."""
    bad = [_simulated(0.10, seed, shadow=shadow) for seed in range(60)]
    equal = [_simulated(0.0, 1_000 + seed, shadow=shadow) for seed in range(30)]
    assert bad.count(PROMOTE) == 0 and bad.count(ABORT) == 60
    assert equal.count(ABORT) <= 2 and equal.count(PROMOTE) >= 28


def test_a_far_worse_canary_is_aborted_on_about_as_few_labels_as_the_minimum():
    """26 points worse (46 % against 20 % errors, the blast-radius benchmark's bad version): aborted
    on 50 challenger labels, where the mixture tuned to the margin alone is still short of it."""
    assert judge_canary(ArmCounts(400, 80, 50, 23), QUIET, POLICY, baked=True).decision == ABORT
    information = 1 / (0.2 * 0.8 * (1 / 50 + 1 / 400))
    margin_only = log_e_value(information * 0.26, information, 1 / POLICY.margin ** 2)
    assert margin_only < math.log(1 / POLICY.alpha_abort)


def test_the_weighted_abort_e_value_lies_between_its_weighted_parts():
    weighted = ((1 / 0.03 ** 2, 0.8), (1 / 0.3 ** 2, 0.2))
    for s, information in [(0.0, 50.0), (30.0, 200.0), (-5.0, 80.0), (400.0, 2_000.0)]:
        parts = [log_e_value(s, information, rho) + math.log(weight) for rho, weight in weighted]
        assert max(parts) <= log_mean_e_value(s, information, weighted) <= max(parts) + math.log(2)
