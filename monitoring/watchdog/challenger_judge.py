"""The challenger judge: is a canary or shadow challenger not worse than the champion, or worse?

Pure logic over counts (``monitoring/store/releases.py`` reads them). Quality is judged as in
``/work/shared/notes/canary-judge.md`` (section 3): two one-sided normal-mixture e-processes
(mSPRT, Johari et al.) on the difference of error rates Δ = p_challenger − p_champion, with a
non-inferiority margin δ:

- promote when "Δ ≥ δ" is rejected at ``alpha_promote`` (the challenger is shown not worse by
  more than δ), with at least ``min_promote_labels`` challenger labels and the bake time passed;
- abort when "Δ ≤ 0" is rejected at ``alpha_abort`` (the challenger is shown worse), from
  ``min_abort_labels`` challenger labels. The abort e-process is a weighted average of two
  mixtures (0.8 on scale δ, 0.2 on 10δ): tuned to δ alone it expects differences the size of δ
  and needed a median of 45 challenger labels to abort a version 26 points worse (simulated, a
  look every 4 of them); the average, still an e-process (a mixture of mixtures), needs 33, at a
  cost of log 1.25 in evidence where Δ is near δ, with the same share of equal versions aborted
  (1.0 % vs 1.2 % of 1,500);
- otherwise continue; at ``max_labels`` challenger labels the release is inconclusive.

An e-process may be looked at after every label without inflating its error rate (Ville's
inequality), so the watchdog judges at each cycle and stops at the first crossing. A canary
compares errors by arm (unpaired); a shadow compares the same requests (paired: only the
discordant pairs carry information, as in McNemar's test). Beside quality, the challenger is
aborted when it answers clearly slower (p95 ratio, and an absolute floor) or fails clearly more often than the champion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CANARY = "canary"
SHADOW = "shadow"
CONTINUE, PROMOTE, ABORT, INCONCLUSIVE = "continue", "promote", "abort", "inconclusive"


@dataclass(frozen=True)
class JudgePolicy:
    """The judge's error rates, margin, and the evidence it needs."""

    margin: float = 0.03  # δ: how much worse (in error rate) still counts as not worse
    alpha_promote: float = 0.001  # P(promote | Δ ≥ δ) at most this
    alpha_abort: float = 0.01  # P(abort on quality | Δ ≤ 0) at most this
    min_promote_labels: int = 200
    min_abort_labels: int = 30
    max_labels: int = 50_000  # challenger labels; beyond, the release is inconclusive
    min_requests: int = 100  # per arm, before the latency and error-rate rules speak
    # The latency rule compares p95, not p99: on the hundred-odd requests of a young canary a p99 is
    # its second slowest request, and a good version was aborted on 70 vs 32 ms p99 with equal
    # medians (8.5 vs 8.2 ms) and p95 (19 vs 15 ms) under test load.
    max_latency_ratio: float = 1.5  # challenger p95 over champion p95
    min_latency_increase_ms: float = 25.0  # and p95 slower by at least this much
    max_error_rate_increase: float = 0.02  # failed requests (status error), absolute

    def __post_init__(self) -> None:
        if not 0 < self.margin < 0.5:
            raise ValueError(f"the margin must be in (0, 0.5), not {self.margin}")
        for name in ("alpha_promote", "alpha_abort"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1)")
        if not 0 < self.min_abort_labels <= self.min_promote_labels <= self.max_labels:
            raise ValueError("need 0 < min_abort_labels <= min_promote_labels <= max_labels")


@dataclass(frozen=True)
class ArmCounts:
    """Canary evidence: labelled predictions and errors of each arm since the release started."""

    champion_labels: int
    champion_errors: int
    challenger_labels: int
    challenger_errors: int


@dataclass(frozen=True)
class PairCounts:
    """Shadow evidence: labelled requests scored by both, and where only one of them erred."""

    pairs: int
    only_challenger_wrong: int
    only_champion_wrong: int
    agreeing: int  # pairs where both gave the same answer (labelled or not, see ``agreement``)
    compared: int  # pairs compared for agreement


@dataclass(frozen=True)
class ServiceCounts:
    """Requests, failures and latency p95 of each arm since the release started."""

    champion_requests: int = 0
    champion_failures: int = 0
    champion_p95_ms: float | None = None
    challenger_requests: int = 0
    challenger_failures: int = 0
    challenger_p95_ms: float | None = None


@dataclass(frozen=True)
class Verdict:
    """What the judge decided, why, and the numbers it decided on."""

    decision: str  # continue | promote | abort | inconclusive
    reason: str
    numbers: dict[str, float | int | None] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.decision in (PROMOTE, ABORT)


def log_e_value(s: float, information: float, rho: float) -> float:
    """log of the one-sided normal-mixture e-process (half-normal mixing, precision ``rho``) at
    score ``s`` and Fisher information ``information``."""
    total = information + rho
    return (math.log(2.0) + 0.5 * math.log(rho / total) + s * s / (2.0 * total)
            + _log_normal_cdf(s / math.sqrt(total)))


def _log_normal_cdf(x: float) -> float:
    """log Φ(x), also far in the lower tail (where Φ itself underflows)."""
    if x > -20.0:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))
    return -0.5 * x * x - math.log(-x) - 0.5 * math.log(2.0 * math.pi)


# the abort e-process's mixing scales (in units of the margin) and their weights
ABORT_SCALES = ((1.0, 0.8), (10.0, 0.2))


def log_mean_e_value(s: float, information: float, weighted_rhos: tuple[tuple[float, float], ...]) -> float:
    """log of the weighted average (weights summing to 1) of the e-processes at each precision
    (valid as each of them is)."""
    logs = [(log_e_value(s, information, rho), weight) for rho, weight in weighted_rhos]
    top = max(value for value, _ in logs)
    return top + math.log(sum(weight * math.exp(value - top) for value, weight in logs))


def confidence_radius(information: float, rho: float, alpha: float) -> float:
    """Half-width of the always-valid confidence sequence for Δ (Howard et al.)."""
    total = information + rho
    return math.sqrt(total * math.log(total / (rho * alpha * alpha))) / information


def _quality(delta_hat: float, info_promote: float, info_abort: float, challenger_labels: int,
             policy: JudgePolicy, baked: bool) -> tuple[str, str, dict]:
    rho = 1.0 / (policy.margin ** 2)
    promote_e = log_e_value(info_promote * (policy.margin - delta_hat), info_promote, rho)
    abort_e = log_mean_e_value(info_abort * delta_hat, info_abort,
                               tuple((1.0 / (policy.margin * scale) ** 2, weight) for scale, weight in ABORT_SCALES))
    radius = confidence_radius(info_abort, rho, policy.alpha_abort)
    numbers = {"error rate difference": round(delta_hat, 4),
               "difference low": round(delta_hat - radius, 4), "difference high": round(delta_hat + radius, 4),
               "promote evidence": round(promote_e, 3), "promote needs": round(math.log(1 / policy.alpha_promote), 3),
               "abort evidence": round(abort_e, 3), "abort needs": round(math.log(1 / policy.alpha_abort), 3)}
    band = f"difference {delta_hat:+.3f} (always-valid {1 - policy.alpha_abort:.0%} band {delta_hat - radius:+.3f} " \
           f"to {delta_hat + radius:+.3f})"
    if challenger_labels >= policy.min_abort_labels and abort_e >= math.log(1 / policy.alpha_abort):
        return ABORT, f"the challenger makes more errors than the champion: {band}", numbers
    if promote_e >= math.log(1 / policy.alpha_promote):
        if challenger_labels < policy.min_promote_labels:
            return CONTINUE, (f"not worse so far ({band}), but {challenger_labels} of "
                              f"{policy.min_promote_labels} challenger labels"), numbers
        if not baked:
            return CONTINUE, f"not worse ({band}); waiting for the bake time", numbers
        return PROMOTE, (f"the challenger is not worse than the champion by more than {policy.margin:.3f}: "
                         f"{band}"), numbers
    if challenger_labels >= policy.max_labels:
        return INCONCLUSIVE, (f"no verdict after {challenger_labels} challenger labels: {band}; "
                              f"promote or abort by hand"), numbers
    return CONTINUE, f"gathering evidence: {band}", numbers


def judge_canary(arms: ArmCounts, service: ServiceCounts, policy: JudgePolicy, *, baked: bool) -> Verdict:
    """The verdict on a canary (each request answered by one arm)."""
    numbers: dict = {"champion labels": arms.champion_labels, "challenger labels": arms.challenger_labels,
                     "champion errors": arms.champion_errors, "challenger errors": arms.challenger_errors}
    stopped = _service_rule(service, policy, numbers)
    if stopped is not None:
        return stopped
    if arms.champion_labels == 0 or arms.challenger_labels == 0:
        return Verdict(CONTINUE, "waiting for labels of both arms", numbers)
    p_champion = (arms.champion_errors + 0.5) / (arms.champion_labels + 1)
    delta_hat = arms.challenger_errors / arms.challenger_labels - arms.champion_errors / arms.champion_labels
    shifted = min(p_champion + policy.margin, 1 - 1e-9)
    info_promote = 1.0 / (shifted * (1 - shifted) / arms.challenger_labels
                          + p_champion * (1 - p_champion) / arms.champion_labels)
    info_abort = 1.0 / (p_champion * (1 - p_champion) * (1 / arms.challenger_labels + 1 / arms.champion_labels))
    decision, reason, quality = _quality(delta_hat, info_promote, info_abort, arms.challenger_labels, policy, baked)
    return Verdict(decision, reason, {**numbers, **quality})


def judge_shadow(pairs: PairCounts, service: ServiceCounts, policy: JudgePolicy, *, baked: bool) -> Verdict:
    """The verdict on a shadow (both versions scored every shadowed request; only the champion answered)."""
    agreement = pairs.agreeing / pairs.compared if pairs.compared else None
    numbers: dict = {"labelled pairs": pairs.pairs, "only challenger wrong": pairs.only_challenger_wrong,
                     "only champion wrong": pairs.only_champion_wrong,
                     "agreement": None if agreement is None else round(agreement, 4)}
    stopped = _service_rule(service, policy, numbers)
    if stopped is not None:
        return stopped
    if pairs.pairs == 0:
        return Verdict(CONTINUE, "waiting for labels of shadowed requests", numbers)
    n = pairs.pairs
    delta_hat = (pairs.only_challenger_wrong - pairs.only_champion_wrong) / n
    discordant = (pairs.only_challenger_wrong + pairs.only_champion_wrong + 1) / n
    info_promote = n / max(discordant - policy.margin ** 2, 1e-9)
    info_abort = n / discordant
    decision, reason, quality = _quality(delta_hat, info_promote, info_abort, n, policy, baked)
    return Verdict(decision, reason, {**numbers, **quality})


def _service_rule(service: ServiceCounts, policy: JudgePolicy, numbers: dict) -> Verdict | None:
    """Abort on a challenger clearly slower or failing more than the champion (with enough requests)."""
    numbers.update({"champion p95 ms": service.champion_p95_ms, "challenger p95 ms": service.challenger_p95_ms,
                    "champion requests": service.champion_requests,
                    "challenger requests": service.challenger_requests})
    if min(service.champion_requests, service.challenger_requests) < policy.min_requests:
        return None
    champion_failing = service.champion_failures / service.champion_requests
    challenger_failing = service.challenger_failures / service.challenger_requests
    numbers.update({"champion failure rate": round(champion_failing, 4),
                    "challenger failure rate": round(challenger_failing, 4)})
    if challenger_failing > champion_failing + policy.max_error_rate_increase:
        return Verdict(ABORT, (f"the challenger fails {challenger_failing:.1%} of requests, the champion "
                               f"{champion_failing:.1%}"), numbers)
    champion_p95, challenger_p95 = service.champion_p95_ms, service.challenger_p95_ms
    if champion_p95 and challenger_p95 and challenger_p95 > policy.max_latency_ratio * champion_p95 \
            and challenger_p95 - champion_p95 >= policy.min_latency_increase_ms:
        return Verdict(ABORT, (f"the challenger answers slower: p95 {challenger_p95:.1f} ms against "
                               f"the champion's {champion_p95:.1f} ms (limit x{policy.max_latency_ratio} and "
                               f"+{policy.min_latency_increase_ms:g} ms)"), numbers)
    return None
