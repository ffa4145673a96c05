#!/bin/sh
# One-shot Airflow set-up for docker-compose.yml: bring the metadata database to head, then give
# the simple auth manager's admin the password from the environment (AIRFLOW_ADMIN_PASSWORD)
# instead of a generated one printed to the logs.
set -eu

airflow db migrate

: "${AIRFLOW_ADMIN_PASSWORD:?AIRFLOW_ADMIN_PASSWORD must be set (see .env.example)}"
: "${AIRFLOW_ADMIN_USER:=admin}"
passwords="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?}"
umask 077
python -c 'import json, os, sys; json.dump({os.environ["AIRFLOW_ADMIN_USER"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, sys.stdout)' \
    > "$passwords.tmp"
mv "$passwords.tmp" "$passwords"
echo "airflow: metadata database migrated; user '$AIRFLOW_ADMIN_USER' can log in"
