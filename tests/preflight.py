"""Say, before the tests run, which real services are missing and what will be skipped because of it.

In CI (``CI=true``) a missing PostgreSQL or Redis is a failure, not a skip: this exits non-zero.
"""

from __future__ import annotations

import os
import shutil
import sys

from tests.conftest import ADMIN_URL, IN_CI, REDIS_URL, _postgres_problem, _redis_problem


def _report(service: str, problem: str | None, where: str, skipped: str) -> int:
    """Say whether a service answers; 1 when it does not and CI requires it."""
    if problem is None:
        print(f"preflight: {service} reachable at {where}")
        return 0
    if IN_CI:
        print(f"preflight: FAIL: {problem}; CI=true requires it", file=sys.stderr)
        return 1
    print(f"preflight: {problem}; {skipped} will be SKIPPED")
    return 0


def main() -> int:
    problems = _report("PostgreSQL", _postgres_problem(), ADMIN_URL, "tests marked 'postgres' and those needing it")
    problems += _report("Redis", _redis_problem(), REDIS_URL, "the CeleryExecutor test")
    if not os.path.exists("/usr/bin/chromium") and shutil.which("chromium") is None:
        level = "FAIL" if IN_CI else "note"
        print(f"preflight: {level}: no chromium; browser tests will be skipped"
              + (" (CI=true requires it)" if IN_CI else ""))
        problems += IN_CI
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
