"""Say, before the tests run, which real services are missing and what will be skipped because of it.

In CI (``CI=true``) a missing PostgreSQL or Redis is a failure, not a skip: this exits non-zero.
"""

from __future__ import annotations

import os
import shutil
import sys

from tests.conftest import ADMIN_URL, IN_CI, REDIS_URL, _postgres_problem, _redis_problem


def main() -> int:
    problems = 0
    postgres = _postgres_problem()
    if postgres is None:
        print(f"preflight: PostgreSQL reachable at {ADMIN_URL}")
    elif IN_CI:
        print(f"preflight: FAIL: {postgres}; CI=true requires it", file=sys.stderr)
        problems += 1
    else:
        print(f"preflight: {postgres}; tests marked 'postgres' and those needing it will be SKIPPED")
    redis = _redis_problem()
    if redis is None:
        print(f"preflight: Redis reachable at {REDIS_URL}")
    elif IN_CI:
        print(f"preflight: FAIL: {redis}; CI=true requires it", file=sys.stderr)
        problems += 1
    else:
        print(f"preflight: {redis}; the CeleryExecutor test will be SKIPPED")
    if not os.path.exists("/usr/bin/chromium") and shutil.which("chromium") is None:
        level = "FAIL" if IN_CI else "note"
        print(f"preflight: {level}: no chromium; browser tests will be skipped"
              + (" (CI=true requires it)" if IN_CI else ""))
        problems += IN_CI
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
