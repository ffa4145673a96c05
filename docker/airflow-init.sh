#!/bin/sh
# One-shot Airflow set-up for docker-compose.yml: bring the metadata database to head, then give
# the simple auth manager's admin the password from its secret file (AIRFLOW_ADMIN_PASSWORD_FILE,
# or AIRFLOW_ADMIN_PASSWORD) instead of a generated one printed to the logs.
set -eu

if [ -n "${AIRFLOW_ADMIN_PASSWORD_FILE:-}" ]; then
  [ -s "$AIRFLOW_ADMIN_PASSWORD_FILE" ] || { echo "airflow-init: $AIRFLOW_ADMIN_PASSWORD_FILE is missing or empty" >&2; exit 1; }
  AIRFLOW_ADMIN_PASSWORD="$(cat "$AIRFLOW_ADMIN_PASSWORD_FILE")"
  export AIRFLOW_ADMIN_PASSWORD
fi
: "${AIRFLOW_ADMIN_PASSWORD:?AIRFLOW_ADMIN_PASSWORD_FILE (or AIRFLOW_ADMIN_PASSWORD) must be set}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE must be set}"
export AIRFLOW_ADMIN_USER="${AIRFLOW_ADMIN_USER:-admin}"

airflow db migrate

passwords="$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
umask 077
python -c 'import json, os, sys; json.dump({os.environ["AIRFLOW_ADMIN_USER"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, sys.stdout)' \
    > "$passwords.tmp"
mv "$passwords.tmp" "$passwords"
echo "airflow: metadata database migrated; user '$AIRFLOW_ADMIN_USER' can log in"
