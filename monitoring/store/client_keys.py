"""Client keys in Vigil's store: create (the secret is returned once, only its hash is kept),
list, revoke, and read them for the API's cache and the dashboard's login.

Every creation and revocation is also written to the access log (action ``key_create`` /
``key_revoke``), in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from monitoring import client_keys
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.history import record_access
from monitoring.store.tables import ClientKey


@dataclass(frozen=True)
class KeyRow:
    """A stored key as listings and the cache see it (never the secret)."""

    id: int
    name: str
    prefix: str
    digest: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def grant(self) -> client_keys.Grant:
        return client_keys.Grant(self.id, self.name, frozenset(self.scopes))


def _row(key: ClientKey) -> KeyRow:
    return KeyRow(key.id, key.name, key.prefix, key.digest, tuple(key.scopes.split()), key.created_at,
                  key.created_by, key.revoked_at, key.revoked_by)


def create_key(url: str, *, name: str, scopes: list[str], actor: str, channel: str) -> tuple[KeyRow, str]:
    """A new key for client ``name``; returns its row and the key's text (shown once, never stored)."""
    client_keys.check_client_name(name)
    scopes = client_keys.check_scopes(scopes)
    made = client_keys.new_key()
    with session_scope(url) as session:
        key = ClientKey(name=name, prefix=made.prefix, digest=made.digest, scopes=" ".join(scopes),
                        created_at=utcnow(), created_by=actor)
        session.add(key)
        session.flush()
        record_access(session, actor=actor, action="key_create", allowed=True, channel=channel,
                      detail=f"key {key.id} ({made.prefix}) for {name}: {' '.join(scopes)}")
        return _row(key), made.text


def list_keys(url: str, *, include_revoked: bool = True) -> list[KeyRow]:
    with session_scope(url) as session:
        query = select(ClientKey).order_by(ClientKey.name, ClientKey.id)
        if not include_revoked:
            query = query.where(ClientKey.revoked_at.is_(None))
        return [_row(key) for key in session.scalars(query)]


def revoke_keys(url: str, which: str, *, actor: str, channel: str) -> list[KeyRow]:
    """Revoke key ``which`` (an id, or a prefix) or every active key of the client named so.

    ValueError when nothing active matches; nothing is changed then.
    """
    with session_scope(url) as session:
        keys = _matching(session, which)
        if not keys:
            raise ValueError(f"no active key with id, prefix or client name {which!r} (vigil keys list)")
        now = utcnow()
        for key in keys:
            key.revoked_at, key.revoked_by = now, actor
            record_access(session, actor=actor, action="key_revoke", allowed=True, channel=channel,
                          detail=f"key {key.id} ({key.prefix}) of {key.name}")
        session.flush()
        return [_row(key) for key in keys]


def _matching(session, which: str) -> list[ClientKey]:
    active = select(ClientKey).where(ClientKey.revoked_at.is_(None))
    if which.isdigit():
        found = list(session.scalars(active.where(ClientKey.id == int(which))))
        if found:
            return found
    found = list(session.scalars(active.where(ClientKey.prefix == which)))
    return found or list(session.scalars(active.where(ClientKey.name == which)))


def find_key(url: str, text: str) -> KeyRow | None:
    """The stored key whose text this is (revoked ones too), or None."""
    prefix = client_keys.prefix_of(text)
    if prefix is None:
        return None
    with session_scope(url) as session:
        key = session.scalars(select(ClientKey).where(ClientKey.prefix == prefix)).first()
        row = _row(key) if key is not None else None
    return row if row is not None and client_keys.matches(text, row.digest) else None


def active_key(url: str, key_id: int) -> KeyRow | None:
    """Key ``key_id`` if it exists and is not revoked."""
    with session_scope(url) as session:
        key = session.get(ClientKey, key_id)
        return _row(key) if key is not None and key.revoked_at is None else None
