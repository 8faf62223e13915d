"""How one deployment calls another."""

from __future__ import annotations

from ray.serve._private import constants as serve_constants
from ray.serve.handle import DeploymentHandle


def as_configured(handle: DeploymentHandle) -> DeploymentHandle:
    """The handle with this replica's transport. A handle keeps the options of the process that
    built the app, which may have imported Serve before the fast path was set
    (runtime.SERVE_FAST_PATH): this replica's own setting decides whether calls go by value over
    the replicas' gRPC servers. (Read at call time, not import: deployment classes travel by
    value, with the driver's module globals.)"""
    return handle.options(_by_reference=not serve_constants.RAY_SERVE_USE_GRPC_BY_DEFAULT)
