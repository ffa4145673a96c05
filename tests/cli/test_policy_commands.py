"""``vigil policy set/show/reset`` on a real store: each change printed and audited as the CLI's
operator, a bad value or an unknown field refused with exit code 2 and nothing changed."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from cli.main import _actor, main
from monitoring.store.engine import session_scope
from monitoring.store.tables import AccessLog
from tests.monitoring.watchdog.test_model_policy import known


def _policy(*args: str):
    return CliRunner().invoke(main, ["policy", *args])


def _line(output: str, field: str) -> str:
    return next(line.split() for line in output.splitlines() if line.split()[:1] == [field])


def test_set_show_reset_and_bad_values_refused(settings, model_name):
    known(settings.database_url, model_name)

    made = _policy("set", model_name, "--min-labels", "80", "--cooldown-minutes", "5", "--reason", "noisy labels")
    assert made.exit_code == 0, made.output
    assert made.stdout.splitlines() == [f"{model_name}: min_labels: 30 (default) -> 80",
                                        f"{model_name}: cooldown_minutes: 30 (default) -> 5"]

    for args, said in [(("--min-labels", "90", "--drift-share", "1.5"),
                        "drift_share=1.5: input should be less than or equal to 1"),
                       (("--min-requests", "lots"), "min_requests=lots: input should be a valid integer, unable to parse string as an integer")]:
        refused = _policy("set", model_name, *args)
        assert (refused.exit_code, refused.stderr.strip()) == (2, f"error: {said}"), refused.output
    assert _policy("set", "no-such-model", "--min-labels", "9").exit_code == 2
    assert _policy("set", model_name).exit_code == 2  # no field named
    assert _policy("show", "no-such-model").exit_code == 2

    shown = _policy("show", model_name)
    assert shown.exit_code == 0, shown.output
    assert _line(shown.stdout, "min_labels") == ["min_labels", "80", "override", "(default", "30)"]
    assert _line(shown.stdout, "drift_share") == ["drift_share", "0.5"]
    assert f"last changed by {_actor()}" in shown.stdout

    reset = _policy("reset", model_name, "cooldown-minutes")
    assert (reset.exit_code, reset.stdout.strip()) == (0, f"{model_name}: cooldown_minutes: 5 -> 30 (default)")
    assert _policy("reset", model_name, "thresholds").exit_code == 2
    everyone = _policy("show")
    assert _line(everyone.stdout, "cooldown_minutes") == ["cooldown_minutes", "30"]
    assert _line(everyone.stdout, "min_labels")[:3] == ["min_labels", "80", "override"]

    with session_scope(settings.database_url) as session:
        audit = [(a.actor, a.action, a.channel) for a in session.scalars(select(AccessLog).order_by(AccessLog.id))]
    assert audit == [(_actor(), "policy_set", "cli"), (_actor(), "policy_reset", "cli")]
