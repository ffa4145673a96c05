"""The demo's narrator against a real store: a real rollback by the watchdog is told in one line
read from the store, then the restored version answering; with Slack off, the messages Vigil
would have sent are printed; nothing already in the store before it started is told again."""

from __future__ import annotations

import re

import pytest

from cli.narration import Narrator
from monitoring.registry.mlflow_registry import Registry
from tests.monitoring.watchdog import conftest as watchdog

trained = watchdog.trained  # the watchdog tests' trained versions (one training per session)

LINE = re.compile(r"==> version (\d+) rolled back to version (\d+) by the watchdog [\d.]+ s after the promotion, "
                  r"on (\d+) labels \(accuracy (0\.\d\d) vs baseline (0\.\d\d)\)")


@pytest.fixture
def world(sqlite_url, mlflow_store, tmp_path, trained, model_name) -> watchdog.World:
    settings = watchdog._settings(sqlite_url, mlflow_store, tmp_path)
    return watchdog.World(sqlite_url, settings, Registry(settings), trained, model_name)


def test_the_rollback_is_told_when_it_happens_with_the_messages_slack_would_get(world: watchdog.World):
    good = world.add("good", health="healthy")
    lines: list[str] = []
    narrator = Narrator(world.url, world.name, say=lines.append, slack_on=False,
                        dashboard_url="http://127.0.0.1:8501")
    narrator.poll()
    assert lines == []  # the promotion of the good version came before: not told again
    bad = world.add("bad")
    world.serve(bad, 200, seed=11)
    assert world.evaluate()[0].action == "rollback"

    narrator.poll()

    told = [line for line in lines if line.startswith("==>")]
    match = LINE.fullmatch(told[0])
    assert match, told
    assert (int(match[1]), int(match[2])) == (bad, good) and 30 <= int(match[3]) <= 200
    assert float(match[4]) < 0.7 < float(match[5])
    assert any(line.strip().startswith("incident: http://127.0.0.1:8501/incidents?id=") for line in lines)
    would = [line for line in lines if line.startswith("    Slack is off; it would have said:")]
    assert len(would) == 3  # the bad version promoted, rolled back, the rollback alert
    assert f"rolled back automatically to version {good}" in "\n".join(lines)

    world.serve(good, 50, seed=13)
    lines.clear()
    narrator.poll()
    assert len([line for line in lines if line.startswith("==> the API answers with version")]) == 1
    assert f"version {bad} gave 200 answers" in lines[0]
    narrator.poll()
    assert not [line for line in lines[1:] if line.startswith("==>")]  # each thing is told once
