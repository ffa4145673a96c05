"""Attack: labels from keys not trusted for decisions must not roll back the champion.

Labels that say the champion is wrong on most predictions (what a forger sends) are marked as
coming from an untrusted key: no rollback, and the count is reported. The very same labels, once
trusted, do roll it back: the test shows that they would have.
"""

from __future__ import annotations

from sqlalchemy import select, update

from monitoring.store.engine import session_scope
from monitoring.store.tables import Feedback, Prediction
from tests.monitoring.watchdog.conftest import World


def _trust(world: World, version: int, *, trusted: bool) -> int:
    """Mark every label of the version's predictions as sent by a trusted key, or not."""
    with session_scope(world.url) as session:
        ids = list(session.scalars(select(Prediction.id).where(
            Prediction.model_name == world.name, Prediction.model_version == version)))
        session.execute(update(Feedback).where(Feedback.prediction_id.in_(ids)).values(trusted=trusted))
    return len(ids)


def test_untrusted_labels_are_ignored_and_counted_the_same_trusted_roll_back(sqlite_world: World):
    world = sqlite_world
    former = world.add("good", health="healthy")
    champion = world.add("bad")  # its labels say it errs on a third of its answers
    world.serve(champion, 200, seed=11)
    forged = _trust(world, champion, trusted=False)

    [outcome] = world.evaluate()

    assert outcome.action != "rollback" and world.champion() == champion
    quality = next(f for f in outcome.findings if f.signal == "quality")
    assert quality.status == "inconclusive" and quality.numbers["labels"] == 0
    assert quality.numbers["untrusted labels ignored"] == forged == 200
    assert any("200 label(s) from keys not trusted" in note for note in outcome.notes)

    _trust(world, champion, trusted=True)  # the very same labels, from a trusted key
    [outcome] = world.evaluate()
    assert (outcome.action, outcome.rolled_back_to) == ("rollback", former)
