"""Alert routes: where outbox messages go, read from one file and checked at start.

``VIGIL_ALERT_ROUTES_FILE`` names a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file with a
list ``routes``; each route has a unique ``name``, a ``kind`` (slack | webhook | pagerduty |
email) and optional filters ``severities`` and ``models`` (empty: every one). A route that took
an alert's "firing" message also takes the rest of that incident (its re-notify, acknowledge and
resolve, whatever their severity), so a thread or an incident is never left open. Secrets are
never in the file: a route names the environment variable that holds its secret (``token_env``,
``webhook_url_env``, ``secret_env``, ``routing_key_env``, ``password_env``), read when the message
is sent, from the variable or from the file its ``<NAME>_FILE`` variable names. A bad file stops
the start with one line naming the route and the field (``RouteConfigError``).

Slack without a Slack route: when the file lists no ``kind = "slack"`` route (or there is no
file), Slack is the default channel configured by ``VIGIL_SLACK_*`` and delivered from the
outbox row itself (``monitoring.alerts.delivery``), as before routes existed. Once the file lists
a Slack route, the routes file alone says where Slack messages go.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from monitoring.settings import SecretFileError, read_secret_file
from monitoring.store.outbox import SEVERITIES

Severity = Literal["info", "warning", "critical"]
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class RouteConfigError(ValueError):
    """The routes file is missing, unreadable or names a bad route."""


def _https_or_local(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS):
        return url
    raise ValueError(f"must be an https:// URL (plain http only to localhost), not {url!r}")


class _Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    severities: tuple[Severity, ...] = SEVERITIES
    models: tuple[str, ...] = ()  # empty: every model

    def accepts(self, *, severity: str, model_name: str) -> bool:
        """Whether a message of this severity about this model goes to this route."""
        return severity in self.severities and (not self.models or model_name in self.models)


def _env_name(value: str) -> str:
    if not value.replace("_", "").isalnum() or not value[0].isalpha():
        raise ValueError(f"must name an environment variable, not {value!r}")
    return value


HttpsUrl = Annotated[str, AfterValidator(_https_or_local)]
EnvName = Annotated[str, AfterValidator(_env_name)]


class SlackRoute(_Route):
    """Slack: a bot token posts to ``channel``, one thread per alert; or an incoming webhook
    (``webhook_url_env``: its own fixed channel, no threads)."""

    kind: Literal["slack"]
    channel: str | None = Field(None, min_length=1, max_length=100)
    token_env: EnvName = "VIGIL_SLACK_BOT_TOKEN"
    webhook_url_env: EnvName | None = None
    api_base_url: HttpsUrl | None = None  # another Slack API (tests: a local fake Slack)

    @model_validator(mode="after")
    def _a_bot_needs_a_channel(self) -> SlackRoute:
        if self.webhook_url_env is None and not self.channel:
            raise ValueError("a bot-token Slack route needs a channel (or webhook_url_env)")
        return self


class WebhookRoute(_Route):
    """A generic HTTPS webhook: signed JSON (``X-Vigil-Signature``) with an idempotency key."""

    kind: Literal["webhook"]
    url: HttpsUrl
    secret_env: EnvName
    timeout_seconds: float = Field(5.0, gt=0, le=30)



class PagerDutyRoute(_Route):
    """PagerDuty Events API v2: trigger per alert (dedup key), resolve when it resolves."""

    kind: Literal["pagerduty"]
    routing_key_env: EnvName
    events_url: HttpsUrl = PAGERDUTY_EVENTS_URL
    timeout_seconds: float = Field(5.0, gt=0, le=30)



class EmailRoute(_Route):
    """E-mail over SMTP: one plain-text mail per message to ``to``."""

    kind: Literal["email"]
    host: str = Field(min_length=1)
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True  # False only for a relay on a trusted network (or a local test server)
    from_address: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    to: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")], ...] = Field(min_length=1)
    username: str | None = None
    password_env: EnvName | None = None
    timeout_seconds: float = Field(10.0, gt=0, le=60)


Route = Annotated[SlackRoute | WebhookRoute | PagerDutyRoute | EmailRoute, Field(discriminator="kind")]
_ROUTES = TypeAdapter(list[Route])


def secret(env_name: str) -> str:
    """The secret a route names, from its variable or ``<NAME>_FILE``; a clear error if unset."""
    try:
        value = read_secret_file(env_name, optional=True) or os.environ.get(env_name, "")
    except SecretFileError as error:
        raise RouteConfigError(str(error)) from None
    if not value:
        raise RouteConfigError(f"environment variable {env_name} (a route's secret) is not set")
    return value


def parse_routes(document: object, *, source: str = "routes") -> tuple[Route, ...]:
    """Validated routes from a parsed document ``{"routes": [...]}``; ``RouteConfigError`` if bad."""
    if not isinstance(document, dict) or set(document) - {"routes"}:
        raise RouteConfigError(f"{source}: expected a table with one key, 'routes' (a list)")
    raw = document.get("routes") or []
    try:
        routes = tuple(_ROUTES.validate_python(raw))
    except ValidationError as error:
        raise RouteConfigError(f"{source}: " + _explain(error, raw)) from None
    names = [route.name for route in routes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RouteConfigError(f"{source}: route name used twice: {', '.join(duplicates)}")
    return routes


def load_routes(path: Path | None) -> tuple[Route, ...]:
    """The routes of the file at ``path`` (none without a file)."""
    if path is None:
        return ()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise RouteConfigError(f"VIGIL_ALERT_ROUTES_FILE={path}: cannot read it ({error.strerror})") from None
    try:
        if Path(path).suffix == ".toml":
            document = tomllib.loads(text)
        elif Path(path).suffix in (".yaml", ".yml"):
            document = yaml.safe_load(text)
        else:
            raise RouteConfigError(f"VIGIL_ALERT_ROUTES_FILE={path}: must end in .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise RouteConfigError(f"{path}: not valid {Path(path).suffix[1:]}: {error}") from None
    return parse_routes(document, source=str(path))


def has_slack(routes: tuple[Route, ...]) -> bool:
    """Whether the routes say where Slack messages go (then the default Slack channel is off)."""
    return any(isinstance(route, SlackRoute) for route in routes)


def _explain(error: ValidationError, raw: object) -> str:
    """Each problem as ``route 'name' (#n): field: message``; the input value is never shown."""
    lines = []
    for problem in error.errors():
        loc = list(problem["loc"])
        label = "routes"
        if loc and isinstance(loc[0], int):
            index = loc.pop(0)
            item = raw[index] if isinstance(raw, list) and index < len(raw) else {}
            name = item.get("name") if isinstance(item, dict) else None
            label = f"route {name!r} (#{index + 1})" if name else f"route #{index + 1}"
            if loc and loc[0] in ("slack", "webhook", "pagerduty", "email"):
                loc.pop(0)
        field = ".".join(str(part) for part in loc) or "kind"
        lines.append(f"{label}: {field}: {problem['msg']}")
    return "; ".join(lines)
