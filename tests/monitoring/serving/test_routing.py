"""The challenger's share of requests: sticky per caller, reshuffled by a new release, honoured on average."""

from __future__ import annotations

import random

from monitoring.serving.routing import caller_point, takes_challenger


def test_a_caller_lands_on_the_same_side_for_the_whole_release():
    sides = {caller: takes_challenger(7, 0.3, caller) for caller in (f"user-{i}" for i in range(200))}
    for _ in range(3):
        assert {caller: takes_challenger(7, 0.3, caller) for caller in sides} == sides


def test_the_share_of_callers_is_honoured_and_a_new_release_reshuffles_them():
    callers = [f"user-{i}" for i in range(4000)]
    first = {c for c in callers if takes_challenger(1, 0.1, c)}
    second = {c for c in callers if takes_challenger(2, 0.1, c)}
    assert 300 <= len(first) <= 500 and 300 <= len(second) <= 500  # 400 expected, 5 standard deviations
    assert len(first & second) < 100  # independent draws: about 40 in both


def test_callers_without_a_name_draw_at_random_and_the_bounds_are_exact():
    draws = iter([0.05, 0.5, 0.09999, 0.1])
    assert [takes_challenger(1, 0.1, None, draw=lambda: next(draws)) for _ in range(4)] == [True, False, True, False]
    rng = random.Random(3)
    assert not any(takes_challenger(1, 0.0, None, rng.random) for _ in range(1000))
    assert all(takes_challenger(1, 1.0, f"c{i}") for i in range(1000))
    assert all(0.0 <= caller_point(9, f"c{i}") < 1.0 for i in range(1000))
