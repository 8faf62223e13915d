"""Joining Ray the same way from a laptop and from ``ray job submit``."""
from __future__ import annotations

import functools
import os

import ray


def init_ray() -> None:
    """A cluster when one is named (RAY_ADDRESS, set by ``ray job submit``), else a local Ray."""
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
    else:
        ray.init(include_dashboard=False)


def reporting_node(fn):
    """A task body that also returns the id of the node it ran on, so a job can record where its
    work went (on a cluster: that every node took part)."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        return ray.get_runtime_context().get_node_id(), fn(*args, **kwargs)
    return run
