#!/bin/sh
# The MLflow server of docker-compose.yml, behind MLflow's basic-auth app: every request but
# /health needs a user and password. MLflow reads its secrets only from variables, so they are
# read here from the files compose mounts (/run/secrets) and handed to the server alone:
#   MLFLOW_BACKEND_STORE_URI_FILE       its PostgreSQL store (a URL with the mlflow role's password)
#   MLFLOW_AUTH_ADMIN_PASSWORD_FILE     the admin's password (MLFLOW_AUTH_ADMIN_USERNAME: the user
#                                       Vigil's services log in as); used when the admin is created
#   MLFLOW_FLASK_SERVER_SECRET_KEY_FILE signs the auth app's CSRF tokens (the same in every worker)
# The arguments are mlflow server's own (--host, --port, ...).
set -eu

from_file() {
  file_variable="$1_FILE"
  eval "file=\${$file_variable:?$file_variable must name a secret file}"
  [ -s "$file" ] || { echo "mlflow-server: $file_variable=$file is missing or empty" >&2; exit 1; }
  # $(cat) drops the trailing newline a text editor leaves
  eval "$1=\$(cat \"\$file\")"
  export "$1"
}

from_file MLFLOW_BACKEND_STORE_URI
from_file MLFLOW_AUTH_ADMIN_PASSWORD
from_file MLFLOW_FLASK_SERVER_SECRET_KEY
: "${MLFLOW_AUTH_ADMIN_USERNAME:?MLFLOW_AUTH_ADMIN_USERNAME must be set}"
: "${MLFLOW_AUTH_CONFIG_PATH:?MLFLOW_AUTH_CONFIG_PATH must name the basic-auth configuration}"

# Vigil uses no MLflow server jobs (MLflow 3's job runner starts 7 worker processes otherwise).
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
exec mlflow server --app-name basic-auth "$@"
