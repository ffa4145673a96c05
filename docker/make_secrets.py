"""Make the secret files docker-compose.yml mounts (``secrets:``), each with a fresh random value.

    python docker/make_secrets.py            # into ./secrets (the compose file's folder)
    python docker/make_secrets.py --dir DIR

A file that exists is kept as it is, so running it again changes nothing and a value you wrote
yourself (a Slack token, a PagerDuty routing key) stays. The database URLs are made from the
role passwords, so they always match what the PostgreSQL init script sets. Optional secrets
(Slack, alert routes) are made empty: empty means "not used". The folder is readable by you
alone (0700); the files in it are 0644 because docker compose mounts them into the containers
as they are, and the containers' users must read them. Standard library only (runs without
Vigil installed); nothing is printed but the names of the files made.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from pathlib import Path

DATABASES = {"vigil": "vigil", "vigil_reader": "vigil", "mlflow": "mlflow", "airflow": "airflow"}
RANDOM = [
    "postgres_password", "mlflow_admin_password", "mlflow_flask_secret_key", "vigil_operator_token",
    "airflow_jwt_secret", "airflow_api_secret_key", "airflow_admin_password",
    *(f"db_password_{role}" for role in DATABASES),
]
OPTIONAL = ["slack_bot_token", "slack_webhook_url", "alert_webhook_secret", "pagerduty_routing_key",
            "smtp_password"]
URLS = {"vigil_database_url": "vigil", "vigil_database_read_url": "vigil_reader",
        "mlflow_database_url": "mlflow", "airflow_database_url": "airflow"}


def database_url(role: str, password: str) -> str:
    """The URL a service uses to reach its database in compose, as ``role``."""
    return f"postgresql+psycopg2://{role}:{password}@postgres:5432/{DATABASES[role]}"


def values(existing: dict[str, str]) -> dict[str, str]:
    """Every secret file's content: the existing ones kept, the missing ones made."""
    made = dict(existing)
    for name in RANDOM:
        made.setdefault(name, secrets.token_urlsafe(32))
    made.setdefault("airflow_fernet_key", base64.urlsafe_b64encode(os.urandom(32)).decode())
    for name in OPTIONAL:
        made.setdefault(name, "")
    for name, role in URLS.items():
        made.setdefault(name, database_url(role, made[f"db_password_{role}"]))
    return made


def write(directory: Path) -> list[str]:
    """Write the missing files into ``directory``; returns their names."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    existing = {path.name: path.read_text().rstrip("\n") for path in directory.iterdir() if path.is_file()}
    new = []
    for name, value in sorted(values(existing).items()):
        if name in existing:
            continue
        path = directory / name
        path.write_text(value + "\n" if value else "")
        path.chmod(0o644)
        new.append(name)
    return new


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent.parent / "secrets")
    directory = parser.parse_args(argv).dir
    made = write(directory)
    print(f"{directory}: made {', '.join(made) if made else 'nothing (every file exists)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
