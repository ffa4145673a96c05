"""Pure choice of the version to roll back to, from the alias history and version health."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def previous_holders(moves: Iterable[tuple[int | None, int | None]], current: int | None) -> list[int]:
    """Versions that held the alias before, most recently holding first, without ``current``.

    ``moves`` are (from_version, to_version) pairs, oldest first.
    """
    last_held: dict[int, int] = {}
    for position, (from_version, to_version) in enumerate(moves):
        for version in (from_version, to_version):
            if version is not None:
                last_held[version] = position
    ranked = sorted(last_held, key=lambda v: last_held[v], reverse=True)
    return [v for v in ranked if v != current]


def choose_rollback_target(
    moves: Iterable[tuple[int | None, int | None]],
    health: Mapping[int, str],
    current: int | None,
    *,
    require_healthy: bool,
) -> int | None:
    """The most recent former champion that is not marked bad.

    With ``require_healthy`` (the watchdog), only versions with a healthy production record
    qualify; an operator's rollback takes any former champion that is not bad.
    """
    for version in previous_holders(moves, current):
        state = health.get(version, "unknown")
        if state == "bad":
            continue
        if require_healthy and state != "healthy":
            continue
        return version
    return None
