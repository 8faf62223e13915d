"""A real two-node Ray cluster on this machine: `ray start --head` plus `ray start --address`, one
logical CPU each, every address it is given on loopback, its nodes holding the S3 credentials."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from coattn_dist.store.lite_server import LOOPBACK, free_ports
from tests.harness.servers import aws_env

VENV_BIN = Path(sys.executable).parent
START_TIMEOUT_S = 120
START_ATTEMPTS = 3


def alive_nodes(dashboard: str) -> list[str]:
    """Node ids the head's state API reports alive ([] while it is not answering yet)."""
    try:
        with urllib.request.urlopen(f"{dashboard}/api/v0/nodes?limit=100", timeout=5) as r:
            rows = json.load(r)["data"]["result"]["result"]
    except (OSError, ValueError, KeyError):
        return []
    return sorted(n["node_id"] for n in rows if n["state"] == "ALIVE")


def stop_node(proc: subprocess.Popen) -> None:
    """`ray stop` would stop every Ray on the machine; this stops one node: its process group,
    politely, then for sure (a raylet can outlive its `ray start`)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def ray_cluster(s3_server, tmp_path_factory):
    """Yields {"dashboard": URL, "nodes": [node ids], "env": environment for `ray job submit`}.
    Jobs inherit their node's environment: the nodes start with the S3 endpoint and keys."""
    gcs, dashboard_port, client, head_agent, head_metrics, agent, metrics = free_ports(7)
    temp = tempfile.mkdtemp(prefix="rc-", dir="/tmp")  # short: Ray's socket paths must fit
    logs = tmp_path_factory.mktemp("ray-cluster")
    env = {
        **os.environ,
        **aws_env(s3_server),
        "RAY_AUTH_MODE": "disabled",
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
    }
    dashboard = f"http://{LOOPBACK}:{dashboard_port}"
    nodes = {
        "head": [
            "--head",
            f"--port={gcs}",
            f"--dashboard-host={LOOPBACK}",
            f"--dashboard-port={dashboard_port}",
            f"--ray-client-server-port={client}",
            f"--temp-dir={temp}",
            f"--dashboard-agent-listen-port={head_agent}",
            f"--metrics-export-port={head_metrics}",
        ],
        "worker": [
            f"--address={LOOPBACK}:{gcs}",
            f"--dashboard-agent-listen-port={agent}",
            f"--metrics-export-port={metrics}",
        ],
    }
    procs = []

    def start(name: str, args: list[str], want: int) -> bool:
        """False when `ray start` gave up: it waits only 30 s for its raylet to register, which
        a machine under heavy load can miss."""
        log = logs / f"{name}-{len(procs)}.log"
        procs.append(
            subprocess.Popen(
                [
                    str(VENV_BIN / "ray"),
                    "start",
                    *args,
                    f"--node-ip-address={LOOPBACK}",
                    "--num-cpus=1",
                    "--disable-usage-stats",
                    "--block",
                ],
                env=env,
                start_new_session=True,
                stdout=open(log, "w"),
                stderr=subprocess.STDOUT,
            )
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(alive_nodes(dashboard)) < want:
            if procs[-1].poll() is not None:
                stop_node(procs[-1])  # what it started before giving up
                return False
            assert time.monotonic() < deadline, f"the Ray {name} did not come up: {log}"
            time.sleep(1)
        return True

    try:
        for want, (name, args) in enumerate(nodes.items(), 1):
            assert any(start(name, args, want) for _ in range(START_ATTEMPTS)), (
                f"the Ray {name} failed to start {START_ATTEMPTS} times, logs in {logs}"
            )
        yield {"dashboard": dashboard, "nodes": alive_nodes(dashboard), "env": env}
    finally:
        for proc in reversed(procs):
            stop_node(proc)
