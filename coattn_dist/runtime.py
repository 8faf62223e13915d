"""Joining Ray the same way from a laptop and from ``ray job submit``."""
from __future__ import annotations

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
