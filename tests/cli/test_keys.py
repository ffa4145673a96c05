"""``vigil keys``: create prints the key once and stores only its hash; list and revoke; bad input
changes nothing. Driven through the command's entry point against a real SQLite store."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from cli.main import main
from monitoring.client_keys import digest
from monitoring.store.client_keys import find_key
from monitoring.store.engine import session_scope
from monitoring.store.tables import AccessLog, ClientKey


def _run(*args: str):
    return CliRunner().invoke(main, ["keys", *args])


def test_create_list_revoke(settings):
    url = settings.database_url
    made = _run("create", "shop", "--scope", "predict", "--scope", "feedback")
    assert made.exit_code == 0, made.output
    text = made.stdout.strip().splitlines()[-1]
    assert text.startswith("vigil_") and "shown once" in made.stderr
    with session_scope(url) as session:
        [row] = session.scalars(select(ClientKey)).all()
        assert (row.name, row.scopes, row.digest) == ("shop", "predict feedback", digest(text))
        assert text not in row.digest and text[-20:] not in " ".join(str(v) for v in vars(row).values())
    assert find_key(url, text).name == "shop"

    listed = _run("list")
    assert listed.exit_code == 0 and "shop" in listed.stdout and row.prefix in listed.stdout
    assert text not in listed.stdout

    revoked = _run("revoke", "shop")
    assert revoked.exit_code == 0 and f"revoked key {row.id}" in revoked.stdout
    assert not find_key(url, text).active
    assert "shop" not in _run("list").stdout and "revoked" in _run("list", "--all").stdout
    with session_scope(url) as session:
        actions = list(session.scalars(select(AccessLog.action).where(AccessLog.channel == "cli")))
    assert actions == ["key_create", "key_revoke"]


def test_bad_input_is_refused_and_changes_nothing(settings):
    assert _run("create", "shop", "--scope", "everything").exit_code == 2
    bad_name = _run("create", "no spaces", "--scope", "predict")
    assert bad_name.exit_code == 2 and "client name" in bad_name.stderr
    missing = _run("revoke", "nobody")
    assert missing.exit_code == 2 and "no active key" in missing.stderr
    with session_scope(settings.database_url) as session:
        assert session.scalars(select(ClientKey)).all() == []
