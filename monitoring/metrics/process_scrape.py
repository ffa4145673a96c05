"""CPU and memory of the serving process, read from the API's Prometheus ``/metrics`` endpoint.

The API exports them as the gauges ``vigil_process_cpu_percent`` and ``vigil_process_memory_mb``
(one sample per worker; Vigil adds them up). An API that does not answer yields nothing: the
caller skips those metrics rather than failing the monitoring run.
"""

from __future__ import annotations

import logging

import httpx
from prometheus_client.parser import text_string_to_metric_families

from monitoring import metric_names

log = logging.getLogger(__name__)

GAUGES = {"vigil_process_cpu_percent": metric_names.CPU_PERCENT, "vigil_process_memory_mb": metric_names.MEMORY_MB}


def parse(text: str) -> dict[str, float]:
    """Metric name (``cpu_percent``, ``memory_mb``) -> value summed over the gauge's samples."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in GAUGES:
                name = GAUGES[sample.name]
                values[name] = values.get(name, 0.0) + float(sample.value)
    return values


def scrape(api_url: str, timeout: float = 2.0) -> dict[str, float]:
    """The serving process's CPU and memory now; empty (and a log line) when the API is unreachable."""
    url = api_url.rstrip("/") + "/metrics"
    try:
        response = httpx.get(url, timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as error:
        log.warning("process metrics skipped: %s unreachable (%s)", url, type(error).__name__)
        return {}
    values = parse(response.text)
    if not values:
        log.warning("process metrics skipped: %s exports neither of %s", url, ", ".join(GAUGES))
    return values
