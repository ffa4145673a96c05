"""Client keys: what a key looks like, what its scopes allow, and how it is checked. Pure, no I/O.

A key is ``vigil_<prefix>_<secret>``: a 10-hex-digit prefix (shown in listings and used to find
the key) and 32 random bytes (``secrets.token_urlsafe``). Only the SHA-256 of the whole text is
stored; a high-entropy secret needs no slow hash. Comparisons use ``hmac.compare_digest``.

Scopes (a key holds one or more):

- ``predict``: ``POST /predict``;
- ``feedback``: ``POST /feedback`` for the predictions made for the key's own client;
- ``feedback_all``: labels for any prediction (another client's, a batch run's);
- ``correct``: replace a label already given (``"correction": true`` with a reason; audited);
- ``trusted``: its labels count in the watchdog's quality test and the monitoring windows;
- ``operator``: the operator endpoints and the dashboard login (a per-operator credential).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREDICT, FEEDBACK, FEEDBACK_ALL, CORRECT, TRUSTED, OPERATOR = (
    "predict", "feedback", "feedback_all", "correct", "trusted", "operator")
SCOPES = (PREDICT, FEEDBACK, FEEDBACK_ALL, CORRECT, TRUSTED, OPERATOR)
# what VIGIL_OPEN_ACCESS grants a request without a key: every client scope, not the operator's
OPEN_SCOPES = frozenset({PREDICT, FEEDBACK, FEEDBACK_ALL, CORRECT, TRUSTED})
SCOPE_HELP = {
    PREDICT: "POST /predict",
    FEEDBACK: "labels for its own client's predictions",
    FEEDBACK_ALL: "labels for any prediction (any client's, batch runs')",
    CORRECT: "correct a label already given (audited)",
    TRUSTED: "its labels count in the watchdog's decisions",
    OPERATOR: "operator endpoints and the dashboard login",
}
HEADER = "X-Vigil-Key"
CLIENT_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_KEY = re.compile(r"^vigil_([0-9a-f]{10})_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class Grant:
    """What a checked key may do: its id, its client's name and its scopes."""

    key_id: int | None  # None: no key, VIGIL_OPEN_ACCESS
    client: str | None
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        """How the audit trail names this key's holder."""
        return f"key:{self.client}" if self.client else "open-access"


OPEN = Grant(None, None, OPEN_SCOPES)


@dataclass(frozen=True)
class NewKey:
    text: str  # shown once, never stored
    prefix: str
    digest: str


def new_key() -> NewKey:
    prefix = secrets.token_hex(5)
    text = f"vigil_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(text, prefix, digest(text))


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def prefix_of(text: str) -> str | None:
    """The prefix of something shaped like a key (None: not a key at all)."""
    match = _KEY.match(text.strip())
    return match.group(1) if match else None


def matches(text: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(text.strip()), stored_digest)


def check_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    """The scopes, de-duplicated in the canonical order; ValueError names an unknown one."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {unknown}: choose from {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError(f"a key needs at least one scope: {', '.join(SCOPES)}")
    return [scope for scope in SCOPES if scope in scopes]


def check_client_name(name: str) -> str:
    if not CLIENT_NAME.match(name):
        raise ValueError(f"client name {name!r}: 1 to 64 letters, digits or . _ @ -")
    return name
