"""Schema-based fuzzing of the OpenAPI document with schemathesis: valid and invalid requests
generated from the spec (with the champion's own features) never get a 5xx."""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode

from tests.api.conftest import running_api

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
WITH_BODY = ["/predict", "/predict/{model_name}", "/feedback", "/operator/promote", "/operator/rollback", "/operator/canary",
             "/operator/shadow", "/operator/release/promote", "/operator/release/abort"]
CASES = ([("POST", path, mode) for path in WITH_BODY for mode in (POSITIVE, NEGATIVE)]
         + [("GET", path, POSITIVE) for path in ["/model", "/health", "/health/ready", "/metrics", "/releases"]])


@pytest.fixture(scope="module")
def live_url(shared_settings):
    # a generated prediction id is never found: each /feedback case would wait the full minimum
    with running_api(shared_settings.model_copy(update={"feedback_wait_seconds": 0.2})) as url:
        yield url


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=lambda v: getattr(v, "value", v))
def test_no_generated_request_gets_a_server_error(live_url, method, path, mode):
    schema = schemathesis.openapi.from_url(f"{live_url}/openapi.json")
    operation = schema[path][method]
    statuses: list[int] = []

    @hypothesis.settings(max_examples=20, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        response = case.call(base_url=live_url)
        statuses.append(response.status_code)
        assert response.status_code < 500, f"{case.as_curl_command()} -> {response.status_code} {response.text[:300]}"

    run()
    assert statuses, "schemathesis generated no request"
    if (path, mode) == ("/predict", POSITIVE):
        assert 200 in statuses, "no generated valid row was scored"
