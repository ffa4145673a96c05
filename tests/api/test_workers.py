"""``vigil serve --workers 2``: whichever worker answers the scrape, /metrics counts all of them."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import SharedState
from monitoring.store.migrations import upgrade
from tests.api.conftest import demo_rows, train_version, vigil_serve


def _samples(base: str) -> dict[str, list]:
    found: dict[str, list] = {}
    text = httpx.get(f"{base}/metrics", headers={"Connection": "close"}).text  # a fresh connection: any worker
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


@pytest.mark.slow
def test_every_scrape_shows_the_traffic_of_all_workers(api_settings, tmp_path: Path):
    upgrade(api_settings.database_url)
    train_version(api_settings)
    with vigil_serve(api_settings, tmp_path / "serve.log", "--workers", "2") as (_, base):
        deadline = time.monotonic() + 60
        while len(_samples(base).get("vigil_model_version", [])) < 2:  # both workers have published
            assert time.monotonic() < deadline
            time.sleep(0.5)
        rows = demo_rows(200)
        for row in rows:  # a connection per request, so the kernel spreads them over both workers
            assert httpx.post(f"{base}/predict", json=row, headers={"Connection": "close"}).status_code == 200
        time.sleep(0.5 + 2 * SharedState.PUBLISH_SECONDS)  # the log writes every 0.5 s, the workers publish after
        for _ in range(6):
            samples = _samples(base)
            assert sum(s.value for s in samples["vigil_predictions_total"]) == 200
            assert sum(s.value for s in samples["vigil_http_requests_total"]
                       if s.labels["path"] == "/predict") == 200
            assert [s.value for s in samples["vigil_prediction_log_written_rows_total"]] == [200]
            assert [s.value for s in samples["vigil_prediction_log_queue_rows"]] == [0]
            versions = samples["vigil_model_version"]
            assert len({s.labels["pid"] for s in versions}) == 2 and {s.value for s in versions} == {1}
            assert len(samples["vigil_process_memory_mb"]) == 2
