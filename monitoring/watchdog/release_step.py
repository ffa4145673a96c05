"""The watchdog's look at a model's running release: judge the challenger, and act on a verdict.

Called once per model per watchdog run, after the champion's evaluation, under the model's lock.
The latest verdict is kept on the release row (``evidence['latest']``, what ``vigil canary status``
and the dashboard show). A promote or abort verdict ends the release (``registry.releases``)
unless the model is frozen: then the verdict waits for an operator. A release whose champion
was moved away meanwhile (a rollback, a move in MLflow) is stopped, since its comparison no
longer holds. An inconclusive release stays as it is and says why once. A promotion is held (the
release goes on) while the champion's estimated-accuracy warning fires: the traffic is not what
the labels so far described, and an estimate is a reason to wait, never to act.
"""

from __future__ import annotations

from datetime import datetime

from monitoring.registry.releases import end_release, release_alert_key
from monitoring.runtime import Runtime
from monitoring.settings import Settings
from monitoring.store import alerts
from monitoring.store import releases as evidence
from monitoring.store.engine import lock_model, session_scope
from monitoring.watchdog import challenger_judge as judge
from monitoring.watchdog.actions import alert_key

WATCHDOG_ACTOR = "watchdog"


def policy_from(settings: Settings) -> judge.JudgePolicy:
    """The judge's policy from the release settings (``VIGIL_RELEASE_*``)."""
    r = settings.release
    return judge.JudgePolicy(margin=r.margin, alpha_promote=r.alpha_promote, alpha_abort=r.alpha_abort,
                             min_promote_labels=r.min_promote_labels, min_abort_labels=r.min_abort_labels,
                             max_labels=r.max_labels, max_latency_ratio=r.max_latency_ratio,
                             min_latency_increase_ms=r.min_latency_increase_ms)


def verdict_for(session, release, policy: judge.JudgePolicy, now: datetime) -> judge.Verdict:
    """The judge's verdict on ``release`` from the store, now."""
    service = evidence.service_counts(session, release)
    baked = now >= release.bake_until
    if release.mode == "canary":
        return judge.judge_canary(evidence.canary_counts(session, release), service, policy, baked=baked)
    return judge.judge_shadow(evidence.shadow_counts(session, release), service, policy, baked=baked)


def judge_release(runtime: Runtime, model_name: str, champion: int, now: datetime) -> list[str]:
    """Judge the model's running release and act; the lines worth printing (none without a release)."""
    with session_scope(runtime.store_url) as session:
        control = lock_model(session, model_name)
        release = evidence.running_release(session, model_name)
        if release is None:
            return []
        head = f"{release.mode} of v{release.challenger_version} (release {release.id})"
        if champion != release.champion_version:
            end_release(session, runtime.registry, release, decision="stop", actor=WATCHDOG_ACTOR,
                        reason=f"the champion moved from version {release.champion_version} to {champion} "
                               f"during the release; its comparison no longer holds", now=now)
            return [f"{head}: stopped, the champion moved to v{champion}"]
        verdict = verdict_for(session, release, policy_from(runtime.settings), now)
        if verdict.decision == judge.PROMOTE and alerts.is_firing(session, alert_key(model_name, champion, "estimated")):
            verdict = judge.Verdict(judge.CONTINUE, (
                f"the judge would promote ({verdict.reason}), but holds while the estimated accuracy warning "
                f"fires (before labels, the traffic looks worse for the model than the labels so far say)"),
                verdict.numbers)
        announced = (release.evidence or {}).get("announced")
        release.evidence = {**(release.evidence or {}), "latest": verdict.numbers,
                            "decision": verdict.decision, "reason": verdict.reason, "judged_at": now.isoformat()}
        release.verdict_reason, release.updated_at = verdict.reason, now
        if verdict.decision == judge.INCONCLUSIVE and announced != judge.INCONCLUSIVE:
            alerts.add_followup(session, key=release_alert_key(release), severity="warning",
                                title=f"{model_name}: {head} is inconclusive",
                                facts={"reason": verdict.reason, **_shown(verdict.numbers)}, now=now)
            release.evidence = {**release.evidence, "announced": judge.INCONCLUSIVE}
        if not verdict.final:
            return [f"{head}: {verdict.decision} - {verdict.reason}"]
        if control.frozen:
            return [f"{head}: the judge says {verdict.decision} ({verdict.reason}), but automatic actions "
                    f"are frozen: an operator decides (vigil canary {verdict.decision} {model_name})"]
        end_release(session, runtime.registry, release, decision=verdict.decision, actor=WATCHDOG_ACTOR,
                    reason=verdict.reason, numbers=verdict.numbers, automatic=True, now=now)
        return [f"{head}: {release.state} - {verdict.reason}"]


def _shown(numbers: dict) -> dict:
    keep = ("challenger labels", "champion labels", "labelled pairs", "error rate difference",
            "difference low", "difference high")
    return {k: v for k, v in numbers.items() if k in keep}
