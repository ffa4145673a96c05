#!/bin/bash
# Runs once, when the PostgreSQL data volume is created (/docker-entrypoint-initdb.d): one role and
# one database each for Vigil, MLflow and Airflow, with the passwords from the environment.
# psql variables (:"name", :'password') quote the values, so any password is safe here.
set -euo pipefail

create_database() {
  local name="$1" password="$2"
  psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       --set name="$name" --set password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
SQL
}

create_database vigil "${DB_PASSWORD_VIGIL:?}"
create_database mlflow "${DB_PASSWORD_MLFLOW:?}"
create_database airflow "${DB_PASSWORD_AIRFLOW:?}"
