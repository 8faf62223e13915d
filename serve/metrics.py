"""What the service reports to Prometheus, the Ray way: `ray.serve.metrics` objects, exported by
every node's metrics agent (the endpoint `ray.nodes()[i]["MetricsExportPort"]` names), beside
Serve's own request counters and latencies. Names there carry Ray's `ray_` prefix."""

from __future__ import annotations

import functools

from ray.serve import metrics

STAGES = ("encode", "retrieve", "rerank", "total")
BOUNDARIES_MS = [1, 2, 5, 10, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000, 10000]


class ServiceMetrics:
    """Search requests by outcome (ok, degraded, invalid, overloaded, unavailable, ...) and each
    stage's latency."""

    def __init__(self):
        self.requests = metrics.Counter(
            "coattn_search_requests",
            description="Search requests by outcome.",
            tag_keys=("outcome",),
        )
        self.latency = metrics.Histogram(
            "coattn_search_stage_ms",
            description="Milliseconds per search stage, as the ingress "
            "saw it (queueing and batching included).",
            boundaries=BOUNDARIES_MS,
            tag_keys=("stage",),
        )

    def answered(self, timings_ms: dict[str, float], degraded: str | None = None) -> None:
        """`degraded`: the answer skipped a stage (counted as outcome "degraded", not "ok")."""
        self.requests.inc(tags={"outcome": "degraded" if degraded else "ok"})
        for stage, ms in timings_ms.items():
            self.latency.observe(ms, tags={"stage": stage})

    def refused(self, outcome: str) -> None:
        self.requests.inc(tags={"outcome": outcome})


@functools.cache
def service_metrics() -> ServiceMetrics:
    """One set per replica process, made there (metrics belong to the process that reports them)."""
    return ServiceMetrics()
