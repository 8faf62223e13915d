"""Prometheus scrapes the service's metrics from Ray's metrics endpoint: request counts by
outcome, per-stage latency histograms, and Serve's own HTTP counters."""

from collections import Counter

import ray
import requests
from prometheus_client.parser import text_string_to_metric_families

from serve.metrics import STAGES


def samples(text: str, name: str) -> list:
    return [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def test_request_counts_and_stage_latencies_are_scrapeable(service, poll):
    for _ in range(3):
        assert requests.get(f"{service}/search", params={"q": "rain"}, timeout=60).ok
    assert (
        requests.get(f"{service}/search", params={"q": "rain", "k": 0}, timeout=60).status_code
        == 422
    )
    endpoint = f"http://127.0.0.1:{ray.nodes()[0]['MetricsExportPort']}/metrics"

    def scraped() -> str | None:
        """the endpoint shows every stage's histogram, both outcomes and Serve's own counts of
        both statuses (each exporter reports on its own clock)"""
        text = requests.get(endpoint, timeout=10).text
        stages = {s.labels["stage"] for s in samples(text, "ray_coattn_search_stage_ms_count")}
        outcomes = {s.labels["outcome"] for s in samples(text, "ray_coattn_search_requests_total")}
        statuses = set(http_statuses(text))
        return (
            text
            if stages == set(STAGES)
            and {"ok", "invalid"} <= outcomes
            and {"200", "422"} <= statuses
            else None
        )

    text = poll(scraped, 60, every_s=2)
    counts = {
        s.labels["outcome"]: s.value for s in samples(text, "ray_coattn_search_requests_total")
    }
    assert counts["ok"] >= 3 and counts["invalid"] >= 1
    for stage in STAGES:
        count = sum(
            s.value
            for s in samples(text, "ray_coattn_search_stage_ms_count")
            if s.labels["stage"] == stage
        )
        buckets = [
            s
            for s in samples(text, "ray_coattn_search_stage_ms_bucket")
            if s.labels["stage"] == stage and s.labels["le"] == "+Inf"
        ]
        assert count >= 3 and sum(b.value for b in buckets) == count
        assert all(s.labels["deployment"] == "Ingress" for s in buckets)
    by_status = http_statuses(text)
    assert by_status["200"] >= 3 and by_status["422"] >= 1, by_status


def http_statuses(text: str) -> Counter:
    """Serve's own count of /search responses by status code."""
    by_status = Counter()
    for s in samples(text, "ray_serve_num_http_requests_total"):
        if s.labels["route"] == "/search":
            by_status[s.labels["status_code"]] += s.value
    return by_status
