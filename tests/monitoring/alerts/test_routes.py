"""The routes file: TOML and YAML read, every bad route refused with its name and field."""

from __future__ import annotations

import pytest

from monitoring.alerts.routes import PagerDutyRoute, RouteConfigError, WebhookRoute, load_routes

GOOD = """
[[routes]]
name = "ops-hook"
kind = "webhook"
url = "https://hooks.example.com/vigil"
secret_env = "OPS_HOOK_SECRET"
severities = ["warning", "critical"]

[[routes]]
name = "pager"
kind = "pagerduty"
routing_key_env = "PD_ROUTING_KEY"
models = ["churn"]
"""


def test_a_toml_file_gives_typed_routes_with_filters(tmp_path):
    path = tmp_path / "routes.toml"
    path.write_text(GOOD)
    hook, pager = load_routes(path)
    assert isinstance(hook, WebhookRoute) and isinstance(pager, PagerDutyRoute)
    assert hook.accepts(severity="critical", model_name="any")
    assert not hook.accepts(severity="info", model_name="any")
    assert pager.accepts(severity="info", model_name="churn")
    assert not pager.accepts(severity="critical", model_name="fraud")


def test_a_yaml_file_reads_the_same(tmp_path):
    path = tmp_path / "routes.yaml"
    path.write_text("routes:\n  - {name: h, kind: webhook, url: 'https://x.example/h', "
                    "secret_env: H_SECRET}\n")
    (route,) = load_routes(path)
    assert route.url == "https://x.example/h"


@pytest.mark.parametrize(("body", "expected"), [
    ('[[routes]]\nname = "h"\nkind = "webhook"\nurl = "http://example.com/h"\nsecret_env = "S"',
     "route 'h' (#1): url: value error, must be an https:// URL"),
    ('[[routes]]\nname = "h"\nkind = "webhook"\nurl = "https://x.example"',
     "route 'h' (#1): secret_env: field required"),
    ('[[routes]]\nname = "h"\nkind = "sms"', "route 'h' (#1): kind"),
    ('[[routes]]\nname = "p"\nkind = "pagerduty"\nrouting_key_env = "K"\nsecret = "abc"',
     "route 'p' (#1): secret: extra inputs are not permitted"),
    ('[[routes]]\nname = "p"\nkind = "pagerduty"\nrouting_key_env = "K"\n'
     '[[routes]]\nname = "p"\nkind = "pagerduty"\nrouting_key_env = "K"',
     "route name used twice: p"),
    ('[[routes]]\nname = "p"\nkind = "pagerduty"\nrouting_key_env = "K"\nseverities = ["page"]',
     "route 'p' (#1): severities.0"),
])
def test_a_bad_route_is_refused_naming_it(tmp_path, body, expected):
    path = tmp_path / "routes.toml"
    path.write_text(body)
    with pytest.raises(RouteConfigError) as caught:
        load_routes(path)
    assert expected.lower() in str(caught.value).lower()
    assert "abc" not in str(caught.value)  # a value is never echoed


def test_a_missing_or_unparsable_file_is_a_clear_error(tmp_path):
    with pytest.raises(RouteConfigError, match="cannot read it"):
        load_routes(tmp_path / "nope.toml")
    (tmp_path / "r.toml").write_text("routes = [")
    with pytest.raises(RouteConfigError, match="not valid toml"):
        load_routes(tmp_path / "r.toml")
    (tmp_path / "r.json").write_text("{}")
    with pytest.raises(RouteConfigError, match="must end in"):
        load_routes(tmp_path / "r.json")
