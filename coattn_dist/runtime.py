"""Joining Ray the same way from a laptop and from ``ray job submit``."""

from __future__ import annotations

import functools
import logging
import os

import ray

from coattn_dist.progress import verbose

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


def quiet_ray() -> None:
    """Ray's loggers to ERROR and Ray Data's progress bars off, unless `verbose()`. Serve sets
    its logger anew when imported, so whoever starts Serve calls this again."""
    if verbose():
        return
    for name in ("ray", "ray.data", "ray.serve", "ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False


def init_ray(**options) -> None:
    """A cluster when one is named (RAY_ADDRESS, set by ``ray job submit``), else a local Ray
    (`options` go to `ray.init`)."""
    if ray.is_initialized():
        return
    quiet = {} if verbose() else {"logging_level": logging.ERROR, "log_to_driver": False}
    if os.environ.get("RAY_ADDRESS"):
        ray.init(**quiet)
    else:
        use_serve_fast_path()
        ray.init(**{"include_dashboard": False, **quiet, **options})
    quiet_ray()


def reporting_node(fn):
    """A task body that also returns the id of the node it ran on, so a job can record where its
    work went (on a cluster: that every node took part)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        return ray.get_runtime_context().get_node_id(), fn(*args, **kwargs)

    return run
