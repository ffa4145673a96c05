"""Where the per-window Evidently reports live, and which of them are old enough to delete.

One HTML file per model, version and window: ``<var_dir>/reports/<model>/v<version>/<start>-<end>.html``
(times in UTC, ``%Y%m%dT%H%M%SZ``). Only files of exactly that shape are ever deleted, judged by
the window end in their name (a file's modification time would restart with every copy or backup).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"^(\d{8}T\d{6}Z)-(\d{8}T\d{6}Z)\.html$")


def reports_dir(var_dir: Path) -> Path:
    return var_dir / "reports"


def report_path(var_dir: Path, model_name: str, version: int, start: datetime, end: datetime) -> Path:
    """The report file of one model version's window (absolute)."""
    name = f"{start.astimezone(UTC):{STAMP}}-{end.astimezone(UTC):{STAMP}}.html"
    return (reports_dir(var_dir) / model_name / f"v{version}" / name).resolve()


def window_end_of(file_name: str) -> datetime | None:
    """The window end a report's file name carries; None for any other file."""
    match = _NAME.match(file_name)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(2), STAMP).replace(tzinfo=UTC)
    except ValueError:  # e.g. month 13: not a name Vigil wrote
        return None


def due_reports(var_dir: Path, cutoff: datetime) -> list[Path]:
    """Report files under ``var_dir`` whose window ended before ``cutoff``, oldest first."""
    root = reports_dir(var_dir)
    if not root.is_dir():
        return []
    due = []
    for path in root.glob("*/v*/*.html"):
        end = window_end_of(path.name)
        if end is not None and end < cutoff and path.is_file() and not path.is_symlink():
            due.append((end, path))
    return [path for _, path in sorted(due)]


def delete_reports(paths: list[Path]) -> int:
    """Delete the files; one already gone (another pruner) is not an error. Returns how many went."""
    deleted = 0
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        deleted += 1
    return deleted
