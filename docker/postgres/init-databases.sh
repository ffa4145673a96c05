#!/bin/bash
# Runs once, when the PostgreSQL data volume is created (/docker-entrypoint-initdb.d): one role and
# one database each for Vigil, MLflow and Airflow, and Vigil's read-only role `vigil_reader`
# (its table grants are `vigil db roles`', run by the vigil-grants job as the store's owner).
# The passwords come from the secret files the DB_PASSWORD_*_FILE variables name
# (docker compose `secrets:`). psql variables (:"name", :'password') quote the values, so any
# password is safe here. Nobody but a database's owner (and its reader) may connect to it.
set -euo pipefail

password_of() {
  local variable="$1_FILE"
  local file="${!variable:?$variable must name a secret file}"
  [ -s "$file" ] || { echo "init-databases: $variable=$file is missing or empty" >&2; exit 1; }
  cat "$file"
}

create_database() {
  local name="$1" password="$2"
  psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       --set name="$name" --set password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE CONNECT, TEMPORARY ON DATABASE :"name" FROM PUBLIC;
SQL
}

create_reader() {
  local name="$1" password="$2" database="$3"
  psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       --set name="$name" --set password="$password" --set database="$database" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
GRANT CONNECT ON DATABASE :"database" TO :"name";
SQL
}

# every password first: a missing file stops the script before anything is made (a failing
# $(...) inside a command's arguments would not stop it)
vigil="$(password_of DB_PASSWORD_VIGIL)"
mlflow="$(password_of DB_PASSWORD_MLFLOW)"
airflow="$(password_of DB_PASSWORD_AIRFLOW)"
vigil_reader="$(password_of DB_PASSWORD_VIGIL_READER)"

create_database vigil "$vigil"
create_database mlflow "$mlflow"
create_database airflow "$airflow"
create_reader vigil_reader "$vigil_reader" vigil
