#!/bin/sh
# One-shot Airflow set-up for docker-compose.yml: bring the metadata database to head, then give
# the simple auth manager's admin the password from the environment (AIRFLOW_ADMIN_PASSWORD)
# instead of a generated one printed to the logs.
set -eu

: "${AIRFLOW_ADMIN_PASSWORD:?AIRFLOW_ADMIN_PASSWORD must be set (see .env.example)}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE must be set}"
export AIRFLOW_ADMIN_USER="${AIRFLOW_ADMIN_USER:-admin}"

airflow db migrate

passwords="$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
umask 077
python -c 'import json, os, sys; json.dump({os.environ["AIRFLOW_ADMIN_USER"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, sys.stdout)' \
    > "$passwords.tmp"
mv "$passwords.tmp" "$passwords"
echo "airflow: metadata database migrated; user '$AIRFLOW_ADMIN_USER' can log in"
