"""docker-compose.yml checked against the repository, since no Docker engine runs here: every build
context, Dockerfile and copied path exists; every command names a CLI command, option, module or
script that exists (the live ``vigil`` CLI, MLflow's and Airflow's own parsers); every port is the
one its service listens on; every VIGIL_ variable is a setting; every ${VAR} is documented in
.env.example; no secret is written in the file; start order has conditions and health checks.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
IMAGE_ROOT = "/opt/vigil"  # WORKDIR of docker/Dockerfile: the repository's files live here
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|WEBHOOK|_KEY$")
IMAGE_TOOLS = {"postgres": {"pg_isready"}, "redis": {"redis-server", "redis-cli"},  # come with an upstream image
               "nginx": {"curl"}}
OWNER = "postgresql+psycopg2://vigil:"  # Vigil's store as its owner, and as the read-only role
READER = "postgresql+psycopg2://vigil_reader:"


# -- reading the files -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


def resolve(text: str) -> str:
    """A value as compose would see it with every variable at its default (or a placeholder)."""
    return INTERPOLATION.sub(lambda m: m.group(3) if m.group(2) == ":-" else f"<{m.group(1)}>",
                             text.replace("$$", "$"))


def variables(text: str) -> set[str]:
    return {m.group(1) for m in INTERPOLATION.finditer(text.replace("$$", ""))}


def env_example() -> dict[str, tuple[str, list[str]]]:
    """``NAME -> (value, comment lines of its block)`` from .env.example."""
    entries, comments = {}, []
    for line in ENV_EXAMPLE.read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            comments = [c for c in comments if not c.startswith("---")]
            continue
        if stripped.startswith("#"):
            comments.append(stripped.lstrip("# "))
            continue
        name, _, value = stripped.partition("=")
        entries[name] = (value, list(comments))
    return entries


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(t) for t in command]


def healthcheck_of(service: dict[str, Any]) -> list[str]:
    test = service.get("healthcheck", {}).get("test", [])
    if isinstance(test, str):
        return shlex.split(test)
    if not test:
        return []
    assert test[0] in {"CMD", "CMD-SHELL"}, test
    return shlex.split(test[1]) if test[0] == "CMD-SHELL" else [str(t) for t in test[1:]]


def in_repo(path: str) -> Path:
    assert path.startswith(IMAGE_ROOT + "/"), f"{path} is not under the image's {IMAGE_ROOT}"
    return REPO / path[len(IMAGE_ROOT) + 1:]


def dockerfile_of(service: dict[str, Any]) -> Path:
    build = service["build"]
    return REPO / build["context"] / build.get("dockerfile", "Dockerfile")


def scripts_run_by(service: dict[str, Any]) -> list[Path]:
    return [in_repo(token) for token in command_of(service) + healthcheck_of(service)
            if token.startswith(IMAGE_ROOT + "/")]


@pytest.fixture(scope="module")
def secret_files(tmp_path_factory) -> Path:
    """The secret files as ``python docker/make_secrets.py`` makes them, in a temporary folder."""
    folder = tmp_path_factory.mktemp("compose") / "secrets"
    done = subprocess.run([sys.executable, str(REPO / "docker" / "make_secrets.py"), "--dir", str(folder)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return folder


def in_container(value: str, secret_files: Path) -> str:
    """A path as the container sees it, mapped to this machine: secrets and the routes file."""
    if value.startswith("/run/secrets/"):
        return str(secret_files / value.rsplit("/", 1)[1])
    if value == "/etc/vigil/alert-routes.toml":
        return str(REPO / "docker" / "alert-routes.toml")
    return value


# -- build -------------------------------------------------------------------------------------------

def test_every_build_context_dockerfile_and_copied_path_exists(services):
    built = {name: s for name, s in services.items() if "build" in s}
    assert built, "no service is built from the repository"
    for name, service in services.items():
        assert "build" in service or "image" in service, f"{name}: neither build nor image"
    for name, service in built.items():
        context = REPO / service["build"]["context"]
        dockerfile = dockerfile_of(service)
        assert context.is_dir(), f"{name}: build context {context} does not exist"
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        text = dockerfile.read_text()
        assert re.search(rf"^WORKDIR {IMAGE_ROOT}$", text, re.MULTILINE), f"{dockerfile}: WORKDIR is not {IMAGE_ROOT}"
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
        allowed = {line[1:].rstrip("/") for line in ignore.read_text().splitlines() if line.startswith("!")}
        for line in re.findall(r"^COPY (.+)$", text, re.MULTILINE):
            *sources, _target = line.split()
            for source in sources:
                assert (context / source).exists(), f"{dockerfile}: COPY {source}: not in the context"
                assert source in allowed, f"{ignore.name} keeps {source} out of the context"


def test_the_image_installs_vigil_with_its_dependencies(services):
    text = dockerfile_of(services["api"]).read_text()
    assert "pyproject.toml" in text and "pip install --no-deps -e ." in text
    assert "GRADIO_ANALYTICS_ENABLED=False" in text and "MLFLOW_DISABLE_TELEMETRY=true" in text


# -- commands ----------------------------------------------------------------------------------------

def _click_command(group: click.Group, tokens: list[str]) -> tuple[click.Command, list[str]]:
    command: click.Command = group
    rest = list(tokens)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        assert name in command.commands, f"{' '.join(tokens)}: no command {name!r} (has {sorted(command.commands)})"
        command = command.commands[name]
    return command, rest


def _check_click(group: click.Group, tokens: list[str]) -> None:
    """The command exists and every option given is one of its options."""
    command, rest = _click_command(group, tokens)
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for token in rest:
        if token.startswith("-"):
            assert token.split("=")[0] in options, f"{' '.join(tokens)}: {command.name} has no option {token}"


def _vigil_cli() -> click.Group:
    from cli.main import main

    return main


def _mlflow_cli() -> click.Group:
    from mlflow.cli import cli

    return cli


def execed_mlflow(script: Path) -> list[str] | None:
    """The MLflow arguments a wrapper script ends with (``exec mlflow server ... "$@"``), if any."""
    for line in script.read_text().splitlines():
        tokens = shlex.split(line.strip()) if line.strip().startswith("exec mlflow ") else []
        if tokens:
            assert tokens[-1] == "$@", f"{script.name}: the service's arguments must reach MLflow"
            return tokens[2:-1]
    return None


def mlflow_arguments(service: dict[str, Any]) -> list[str] | None:
    """Everything after ``mlflow`` a service runs, directly or through its wrapper script."""
    tokens = command_of(service)
    if tokens[:1] == ["mlflow"]:
        return tokens[1:]
    if tokens and tokens[0].startswith(IMAGE_ROOT + "/"):
        wrapped = execed_mlflow(in_repo(tokens[0]))
        return None if wrapped is None else wrapped + tokens[1:]
    return None


def _check_command(service_name: str, service: dict[str, Any], tokens: list[str]) -> list[list[str]]:
    """Checks what it can here; returns the Airflow commands (checked together by Airflow's parser)."""
    program, args = tokens[0], [resolve(t) for t in tokens[1:]]
    if program == "vigil":
        _check_click(_vigil_cli(), args)
    elif program == "mlflow":
        _check_click(_mlflow_cli(), args)
    elif program == "airflow":
        return [args]
    elif program == "celery":  # Celery's own CLI on the app Airflow's provider defines
        import importlib.util

        module, _, attribute = _option(args, "--app").rpartition(".")
        top, *rest = module.split(".")  # found without importing Airflow (the DAG tests configure it first)
        path = Path(importlib.util.find_spec(top).origin).parent.joinpath(*rest).with_suffix(".py")
        assert path.is_file(), f"{service_name}: no module {module}"
        assert f'name == "{attribute}"' in path.read_text(), f"{service_name}: {module} has no {attribute}"  # PEP 562
    elif program == "python":
        if args[0] == "-m":
            import importlib.util

            assert importlib.util.find_spec(args[1]) is not None, f"{service_name}: no module {args[1]}"
        else:
            assert in_repo(args[0]).is_file(), f"{service_name}: {args[0]} is not in the repository"
    elif program.startswith(IMAGE_ROOT + "/"):
        script = in_repo(program)
        assert script.is_file() and os.access(script, os.X_OK), f"{service_name}: {script} is not an executable"
        wrapped = execed_mlflow(script)
        if wrapped is not None:  # `exec mlflow ... "$@"`: the service's arguments go to MLflow
            _check_click(_mlflow_cli(), wrapped + args)
        return [shlex.split(line.strip())[1:] for line in script.read_text().splitlines()
                if line.strip().startswith("airflow ")]
    else:
        image = service.get("image", "").split(":")[0]
        assert program in IMAGE_TOOLS.get(image, set()), f"{service_name}: unknown program {program!r}"
    return []


def test_every_vigil_mlflow_python_and_script_command_exists(services):
    for name, service in services.items():
        for tokens in (command_of(service), healthcheck_of(service)):
            if tokens:
                _check_command(name, service, tokens)


@pytest.mark.slow
def test_every_airflow_command_parses_with_airflow_s_own_cli(services, tmp_path: Path):
    commands = [args for name, service in services.items() for tokens in (command_of(service), healthcheck_of(service))
                if tokens for args in _check_command(name, service, tokens)]
    assert {c[0] for c in commands} >= {"api-server", "scheduler", "dag-processor", "triggerer", "db"}
    probe = ("import json, sys\nfrom airflow.cli import cli_parser\nparser = cli_parser.get_parser()\nbad = []\n"
             "for args in json.loads(sys.argv[1]):\n    try:\n        parser.parse_args(args)\n"
             "    except SystemExit:\n        bad.append(args)\nprint(json.dumps(bad))\n")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run([sys.executable, "-c", probe, json.dumps(commands)], capture_output=True, text=True,
                          env=env, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_mlflow_store_uri_variable_is_the_one_mlflow_reads(services):
    server = _mlflow_cli().commands["server"]
    envvars = {param.name: param.envvar for param in server.params}
    # the wrapper reads <variable>_FILE and exports <variable> for MLflow alone
    assert envvars["backend_store_uri"] + "_FILE" in services["mlflow"]["environment"]
    wrapper = in_repo(command_of(services["mlflow"])[0]).read_text()
    assert f"from_file {envvars['backend_store_uri']}" in wrapper
    assert "--serve-artifacts" in mlflow_arguments(services["mlflow"])


# -- ports -------------------------------------------------------------------------------------------

def _option(tokens: list[str], *names: str) -> str | None:
    for index, token in enumerate(tokens):
        if token in names and index + 1 < len(tokens):
            return resolve(tokens[index + 1])
        for name in names:
            if token.startswith(name + "="):
                return resolve(token.split("=", 1)[1])
    return None


def listening_port(service: dict[str, Any]) -> int | None:
    """The port the service's process listens on, from its command or the program's own default."""
    tokens = command_of(service)
    if not tokens and service.get("image", "").startswith("nginx:"):
        return nginx_listen_port(service)
    if not tokens:
        return 5432 if service.get("image", "").startswith("postgres:") else None
    program, args = tokens[0], tokens[1:]
    if program == "redis-server":
        return int(_option(args, "--port") or 6379)
    if program == "vigil":
        command, _rest = _click_command(_vigil_cli(), [resolve(a) for a in args])
        if not any(p.name == "port" for p in command.params):
            return None
        given = _option(args, "--port", "-p")
        return int(given) if given else next(p.default for p in command.params if p.name == "port")
    mlflow = mlflow_arguments(service)
    if mlflow is not None:
        return int(_option(mlflow, "--port", "-p") or 5000)
    if program == "airflow" and args[0] == "api-server":
        return int(_option(args, "--port", "-p") or 8080)
    return None


def nginx_config(service: dict[str, Any]) -> Path:
    """The repository's file an nginx service runs with (mounted over the image's nginx.conf)."""
    mounted = [v.split(":") for v in service["volumes"] if v.endswith(":/etc/nginx/nginx.conf:ro")]
    assert len(mounted) == 1, "the configuration is mounted read-only over /etc/nginx/nginx.conf"
    return REPO / mounted[0][0]


def nginx_listen_port(service: dict[str, Any]) -> int:
    ports = {int(port) for port in re.findall(r"^\s*listen\s+(\d+)\s*;", nginx_config(service).read_text(),
                                               re.MULTILINE)}
    assert len(ports) == 1, f"one listening port, not {ports}"
    return ports.pop()


def test_every_published_and_checked_port_is_the_one_listened_on(services):
    for name, service in services.items():
        port = listening_port(service)
        for mapping in service.get("ports", []):
            container_port = int(resolve(str(mapping)).split(":")[-1].split("/")[0])
            assert container_port == port, f"{name}: publishes {container_port}, listens on {port}"
        for token in healthcheck_of(service):
            if token.startswith("http"):
                url = urlsplit(token)
                assert url.hostname in {"127.0.0.1", "localhost"}, f"{name}: health check leaves the container"
                expected = port
                if command_of(service)[:2] == ["airflow", "scheduler"]:
                    env = service["environment"]
                    assert env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "True"
                    expected = int(env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"])
                assert url.port == expected, f"{name}: health check on {url.port}, listens on {expected}"


def _urls_in(service: dict[str, Any]) -> list[tuple[str, str]]:
    values = [str(v) for v in service.get("environment", {}).values()] + command_of(service)
    return [(value, resolve(value)) for value in values if re.match(r"^[a-z0-9+]+://", resolve(value))]


def test_every_url_to_another_service_uses_its_name_and_listening_port(services):
    checked = 0
    for name, service in services.items():
        for raw, url in _urls_in(service):
            parts = urlsplit(url)
            if parts.hostname in services:
                assert parts.port == listening_port(services[parts.hostname]), f"{name}: {raw}"
                checked += 1
    assert checked >= 5
    assert services["gradio"]["environment"]["VIGIL_API_URL"] == "http://api-balancer:8000"
    assert _option(command_of(services["gradio"]), "--api-url") == "http://api-balancer:8000"


# -- settings and variables --------------------------------------------------------------------------

def _settings_env_names() -> set[str]:
    from pydantic import AliasChoices
    from pydantic_settings import BaseSettings

    from monitoring.settings import SECRET_FILE_VARIABLES, Settings

    names = {f"{variable}_FILE" for variable in SECRET_FILE_VARIABLES}
    sections = [Settings, *(field.default_factory for field in Settings.model_fields.values()
                            if isinstance(field.default_factory, type)
                            and issubclass(field.default_factory, BaseSettings))]  # watchdog, retention
    for section in sections:
        prefix = section.model_config["env_prefix"]
        for field_name, field in section.model_fields.items():
            names.add(f"{prefix}{field_name.upper()}")
            if isinstance(field.validation_alias, AliasChoices):
                names.update(str(choice) for choice in field.validation_alias.choices)
    return names


def test_every_vigil_variable_is_a_setting(services):
    known = _settings_env_names()
    text = COMPOSE.read_text()
    names = {key for s in services.values() for key in s.get("environment", {})} | variables(text)
    unknown = sorted(n for n in names if n.startswith("VIGIL_") and n not in known)
    assert unknown == [], f"not fields of monitoring.settings.Settings: {unknown}"


def test_the_settings_of_every_vigil_service_are_valid(services, monkeypatch, secret_files):
    from monitoring.settings import Settings

    for name, service in services.items():
        if command_of(service)[:1] != ["vigil"]:
            continue
        for key in [k for k in os.environ if k.startswith(("VIGIL_", "MLFLOW_TRACKING_"))]:
            monkeypatch.delenv(key)
        for key, value in service["environment"].items():
            monkeypatch.setenv(key, in_container(resolve(str(value)), secret_files))
        settings = Settings()
        store = {"gradio": READER, "demo-traffic": "sqlite:"}.get(name, OWNER)  # simulate: API only
        assert settings.database_url.startswith(store), name
        assert settings.read_url.startswith(READER if name in ("gradio", "dashboard") else store), name
        if "MLFLOW_TRACKING_URI" in service["environment"]:  # not the store jobs
            assert settings.mlflow_tracking_uri == "http://mlflow:5000", name
        assert settings.slack_enabled is False, f"{name}: Slack must stay off when its secret files are empty"
        if name not in ("gradio", "demo-traffic", "vigil-migrate", "vigil-grants"):
            assert settings.mlflow_tracking_username and settings.mlflow_tracking_password, \
                f"{name} talks to MLflow, which needs a login"


def test_every_variable_is_documented_in_env_example_and_every_entry_is_used():
    documented = env_example()
    used = variables(COMPOSE.read_text())
    missing = sorted(used - set(documented))
    assert missing == [], f"used in docker-compose.yml, not in .env.example: {missing}"
    unused = sorted(set(documented) - used)
    assert unused == [], f"in .env.example, used nowhere: {unused}"
    undocumented = sorted(name for name, (_value, comments) in documented.items() if not comments)
    assert undocumented == [], f"no comment explains: {undocumented}"


# -- secrets -----------------------------------------------------------------------------------------

def written_password(value: str) -> str | None:
    """The password written in a URL's user info, unless it is a ${VAR}."""
    match = re.match(r"^[a-z0-9+.-]+://[^:@/]+:(.*)@[^@]+$", value)
    if not match or INTERPOLATION.fullmatch(match.group(1)):
        return None
    return match.group(1)


def test_a_password_in_a_url_is_found():
    assert written_password("postgresql+psycopg2://vigil:hunter2@postgres:5432/vigil") == "hunter2"
    assert written_password("postgresql://vigil:${PW:?set it}@postgres:5432/vigil") is None
    assert written_password("http://mlflow:5000") is None


def test_no_secret_is_written_in_the_compose_file(services):
    text = COMPOSE.read_text()
    assert not re.search(r"xox[abp]-|hooks\.slack\.com|-----BEGIN", text)
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            value = str(value)
            if SECRET_NAME.search(key) and not key.endswith(("_FILE", "_CMD")):
                match = INTERPOLATION.fullmatch(value)
                assert match, f"{name}: {key} must come from .env (${{VAR}}), not be written here"
                assert match.group(2) != "-" and (match.group(2) != ":-" or not match.group(3)), \
                    f"{name}: {key} has a secret default"
            assert not written_password(value), f"{name}: {key} has a password written in it"


def test_env_example_holds_no_secret():
    for name, (value, _comments) in env_example().items():
        if SECRET_NAME.search(name) or name.startswith("DB_PASSWORD"):
            assert value == "", f".env.example: {name} must be empty (the user sets it in .env)"


def test_env_file_is_not_committed():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO, check=False)
    assert ignored.returncode == 0, ".env must be in .gitignore"


# -- start order -------------------------------------------------------------------------------------

def test_start_order_has_conditions_and_health_checks(services):
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for target, rule in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}'s health, which has no check"
            elif condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is a one-shot step: restart must be 'no'"
            else:
                pytest.fail(f"{name} -> {target}: condition {condition!r}")
            if "profiles" not in service:
                assert "profiles" not in services[target], f"{name} depends on {target}, which is not always started"
        if service.get("ports") and name != "postgres":
            assert "healthcheck" in service, f"{name} serves a port but has no health check"


def test_start_order_has_no_cycle(services):
    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        for target in services[name].get("depends_on", {}):
            visit(target, (*path, name))

    for name in services:
        visit(name, ())


# -- the pieces ------------------------------------------------------------------------------------

def test_the_stack_has_every_piece(services):
    commands = {name: command_of(s)[:3] for name, s in services.items()}
    assert commands["vigil-migrate"] == ["vigil", "db", "upgrade"]
    assert commands["api"][:2] == ["vigil", "serve"]
    assert commands["gradio"][:2] == ["vigil", "gradio"]
    assert commands["dashboard"][:2] == ["vigil", "dashboard"]
    assert commands["watchdog"][:2] == ["vigil", "watch"]
    assert mlflow_arguments(services["mlflow"])[:3] == ["server", "--app-name", "basic-auth"]
    airflow = {c[1] for c in commands.values() if c[:1] == ["airflow"]}
    assert airflow == {"api-server", "scheduler", "dag-processor", "triggerer", "celery"}
    assert "/mlartifacts" in mlflow_arguments(services["mlflow"])
    assert any(v.endswith(":/mlartifacts") for v in services["mlflow"]["volumes"])


def test_airflow_runs_the_repository_s_dags_on_postgresql_with_the_local_executor(services, secret_files):
    for name, service in services.items():
        if not name.startswith("airflow-"):
            continue
        env = service["environment"]
        assert resolve(env["AIRFLOW__CORE__EXECUTOR"]) == "LocalExecutor"  # unless AIRFLOW_EXECUTOR says otherwise
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
        connection = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD"]
        assert connection == "cat /run/secrets/airflow_database_url", name
        url = (secret_files / "airflow_database_url").read_text().strip()
        assert url.startswith("postgresql+psycopg2://airflow:"), name
        dags = in_repo(env["AIRFLOW__CORE__DAGS_FOLDER"])
        assert dags == REPO / "dags" and list(dags.glob("*.py")), f"{name}: no DAGs at {dags}"
        # the LocalExecutor runs every task in the scheduler, the CeleryExecutor on the workers:
        # the ones that need Vigil's store
        runs_tasks = name in ("airflow-scheduler", "airflow-worker")
        assert ("VIGIL_DATABASE_URL_FILE" in env) == runs_tasks, f"{name}: Vigil's store only where tasks run"
    init = scripts_run_by(services["airflow-init"])
    assert any("airflow db migrate" in script.read_text() for script in init)


def test_every_database_url_names_a_role_and_database_the_init_script_creates(services, secret_files):
    postgres = services["postgres"]
    mounts = [v.split(":") for v in postgres["volumes"] if v.startswith("./")]
    scripts = [REPO / source for source, target, *_ in mounts if target.startswith("/docker-entrypoint-initdb.d/")]
    assert scripts and all(s.is_file() and os.access(s, os.X_OK) for s in scripts)
    text = scripts[0].read_text()
    passwords = dict(re.findall(r'^(\w+)="\$\(password_of (\w+)\)"$', text, re.MULTILINE))
    made = re.findall(r'^create_database (\w+) "\$(\w+)"$', text, re.MULTILINE)
    made += re.findall(r'^create_reader (\w+) "\$(\w+)" vigil$', text, re.MULTILINE)
    created = {role: passwords[variable] for role, variable in made}
    assert set(created) == {"vigil", "vigil_reader", "mlflow", "airflow"}
    for password_variable in created.values():
        assert f"{password_variable}_FILE" in postgres["environment"], f"the init script reads {password_variable}"
    urls = {path.name: path.read_text().strip() for path in secret_files.iterdir() if path.name.endswith("_url")
            and "database" in path.name}
    assert len(urls) == 4
    for name, value in urls.items():
        parts = urlsplit(value)
        assert parts.hostname == "postgres" and parts.port == listening_port(postgres), name
        database = parts.path.lstrip("/")
        assert database == (parts.username if parts.username != "vigil_reader" else "vigil"), value
        password_file = postgres["environment"][f"{created[parts.username]}_FILE"].rsplit("/", 1)[1]
        assert parts.password == (secret_files / password_file).read_text().strip(), \
            f"{name}: not the password the init script set for {parts.username}"


# -- the watched watchdog ----------------------------------------------------------------------------

def test_the_watchdog_service_is_health_checked_by_its_heartbeat(services):
    watchdog = services["watchdog"]
    assert command_of(watchdog)[:2] == ["vigil", "watch"]
    assert healthcheck_of(watchdog) == ["vigil", "watchdog-health"]  # this host's heartbeat
    interval = float(_option(command_of(watchdog), "--interval"))
    # every long-running Vigil process (not the one-shot store jobs) judges the watchdog alike
    stale = {name: float(resolve(str(s["environment"]["VIGIL_WATCHDOG_STALE_SECONDS"])))
             for name, s in services.items() if command_of(s)[:1] == ["vigil"] and s.get("restart") != "no"}
    assert len(set(stale.values())) == 1, f"one stale threshold for every Vigil process: {stale}"
    threshold = stale["watchdog"]
    assert threshold >= 5 * interval, "a threshold of a few intervals would flap on one slow run"
    assert threshold <= 60, "a stalled watchdog must be announced within a minute"
    check = watchdog["healthcheck"]
    seconds = {key: float(check[key].rstrip("s")) for key in ("interval", "timeout", "start_period")}
    assert seconds["timeout"] < seconds["interval"] and seconds["start_period"] >= threshold
    # the Airflow tasks read it too: the vigil_monitoring DAG raises watchdog_stalled
    assert services["airflow-scheduler"]["environment"]["VIGIL_WATCHDOG_STALE_SECONDS"] == \
        watchdog["environment"]["VIGIL_WATCHDOG_STALE_SECONDS"]
