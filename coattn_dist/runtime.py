"""Joining Ray the same way from a laptop and from ``ray job submit``."""
from __future__ import annotations

import functools
import os

import ray

# Ray Serve's fast request path (RAY_SERVE_THROUGHPUT_OPTIMIZED): gRPC between deployments, user
# code and the router on each replica's own event loop, buffered access logs, the GC frozen after
# start. A search against a real Milvus answers 1.25-1.8x sooner (BENCHMARKS.md). Direct ingress,
# the rest of it, stays off: it drops the per-node proxy, for use behind an external load balancer.
SERVE_FAST_PATH = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0"}


def use_serve_fast_path() -> None:
    """Before a local Ray starts: Serve's controller, proxies and replicas inherit the environment
    and read these once, at import. A cluster sets them in its image (cluster/Dockerfile)."""
    for name, value in SERVE_FAST_PATH.items():
        os.environ.setdefault(name, value)


def init_ray(**options) -> None:
    """A cluster when one is named (RAY_ADDRESS, set by ``ray job submit``), else a local Ray
    (`options` go to `ray.init`)."""
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
    else:
        use_serve_fast_path()
        ray.init(**{"include_dashboard": False, **options})


def reporting_node(fn):
    """A task body that also returns the id of the node it ran on, so a job can record where its
    work went (on a cluster: that every node took part)."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        return ray.get_runtime_context().get_node_id(), fn(*args, **kwargs)
    return run
