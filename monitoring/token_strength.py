"""The minimum strength of the operator token: long, varied, and not a word from a short list.

``python -c "import secrets; print(secrets.token_urlsafe(32))"`` gives a token that passes.
"""

from __future__ import annotations

MIN_LENGTH = 24
MIN_DISTINCT = 10  # a long run of few characters ('aaaa...', 'abababab...') guesses like a short one
KNOWN_WEAK = ("changeme", "admin", "password", "secret", "token", "operator", "vigil", "letmein", "123456")


def weakness(token: str) -> str | None:
    """Why ``token`` is too weak to guard operator actions, or None when it is strong enough."""
    folded = token.lower()
    for word in KNOWN_WEAK:
        if word in folded and folded.replace(word, "").strip("-_.0123456789 ") == "":
            return f"it is made of the well-known weak word {word!r}"
    if len(token) < MIN_LENGTH:
        return f"it has {len(token)} characters, at least {MIN_LENGTH} are needed"
    if len(set(token)) < MIN_DISTINCT:
        return f"it uses only {len(set(token))} distinct characters, at least {MIN_DISTINCT} are needed"
    return None
