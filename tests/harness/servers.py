"""Servers only the tests and the benchmarks start: SeaweedFS S3 and Milvus standalone.

Started, probed and stopped by the product's `subprocess_server` (see `coattn_dist.store.
lite_server`), bound to 127.0.0.1. Imported as `tests.harness.servers` with the repository root
on `sys.path` (pytest's `pythonpath`; the benchmarks add it themselves).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from coattn_dist.store.lite_server import (
    LOOPBACK,
    STARTUP_TIMEOUT_S,
    free_port,
    free_ports,
    milvus_answers,
    subprocess_server,
    venv_bin,
)


def port_open(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def processes_using(path: Path) -> list[int]:
    """Pids whose command line names `path`: every server here takes its data dir as argument."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(path).encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def _s3_answers(endpoint_url: str, key: str, secret: str) -> bool:
    import botocore.session
    from botocore.config import Config

    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2),
    )
    try:
        client.list_buckets()
        return True
    except Exception:
        return False


# Every listener of `weed mini` that is on by default and that we keep (webdav, Iceberg and
# Lance are switched off). gRPC ports default to HTTP port + 10000, so they are set too.
_WEED_PORT_FLAGS = tuple(
    f"{service}.port{kind}"
    for service in ("s3", "master", "volume", "filer", "admin")
    for kind in ("", ".grpc")
)


def _weed_command(data_dir: Path, ports: dict[str, int]) -> list[str]:
    return [
        venv_bin("weed"),
        "mini",
        f"-dir={data_dir}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        "-admin.ui=false",
        "-master.telemetry=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]


def _remove_weed_sockets(ports: dict[str, int]) -> None:
    """weed can leave its /tmp/seaweedfs-*-PORT.sock files behind; test runs should not litter."""
    for port in ports.values():
        for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            with contextlib.suppress(OSError):
                sock.unlink()


@contextlib.contextmanager
def seaweedfs_s3(
    data_dir: str | os.PathLike,
    access_key: str,
    secret_key: str,
    port: int | None = None,
    timeout_s: float = STARTUP_TIMEOUT_S,
) -> Iterator[dict[str, str]]:
    """A real S3 endpoint (SeaweedFS `weed mini`) with signature auth enforced.

    Every one of its ten ports is chosen here, so two instances, or a busy 8333, never collide.
    Yields `{"endpoint_url", "key", "secret"}`: `s3fs.S3FileSystem(**it)` works as is, and
    `aws_env(it)` gives the AWS_* variables for other clients.
    """
    data_dir = Path(data_dir)
    picked = free_ports(len(_WEED_PORT_FLAGS))
    if port:
        picked[0] = port
    ports = dict(zip(_WEED_PORT_FLAGS, picked, strict=True))
    creds = {
        "endpoint_url": f"http://{LOOPBACK}:{ports['s3.port']}",
        "key": access_key,
        "secret": secret_key,
    }
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    cmd = _weed_command(data_dir, ports)
    try:
        with subprocess_server(
            "seaweedfs", cmd, data_dir, lambda: _s3_answers(**creds), env, timeout_s
        ):
            yield creds
    finally:
        _remove_weed_sockets(ports)


def aws_env(s3: dict[str, str], region: str = "us-east-1") -> dict[str, str]:
    """The standard AWS variables for an endpoint from `seaweedfs_s3` (region: s3fs needs one
    to create buckets, and must not get it through client_kwargs)."""
    return {
        "AWS_ENDPOINT_URL": s3["endpoint_url"],
        "AWS_ACCESS_KEY_ID": s3["key"],
        "AWS_SECRET_ACCESS_KEY": s3["secret"],
        "AWS_DEFAULT_REGION": region,
    }


# Runs Milvus standalone in another interpreter (the venv that holds the `milvus` package) until
# SIGTERM; its stop() then ends the C++ server (SIGTERM, SIGKILL after 1 s).
_MILVUS_STANDALONE_SCRIPT = """
import signal, sys
from milvus import default_server as server
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
server.set_base_dir(sys.argv[1])
server.listen_port = int(sys.argv[2])
server.config.set("authorization_enabled", sys.argv[3] == "auth")  # then root:Milvus
server.start()
signal.sigwait({signal.SIGTERM, signal.SIGINT})
server.stop()
"""


MILVUS_ROOT_TOKEN = "root:Milvus"  # Milvus' default root user, when authentication is on


@contextlib.contextmanager
def milvus_standalone(
    data_dir: str | os.PathLike,
    python: str | None = None,
    timeout_s: float = 180.0,
    auth: bool = False,
) -> Iterator[str]:
    """The real Milvus C++ server from the PyPI package `milvus` (2.3.5), for scale benchmarks
    only: its gRPC ports listen on every interface. Yields `http://127.0.0.1:PORT`.

    `python`: an interpreter whose environment holds `milvus` (it pins packages that do not
    belong in the project's venv); without it, `milvus` is imported here. `auth` (with `python`):
    authentication on, the token is `MILVUS_ROOT_TOKEN`.
    """
    if python is not None:
        port = free_port()
        uri = f"http://{LOOPBACK}:{port}"
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        cmd = [python, "-c", _MILVUS_STANDALONE_SCRIPT, str(data_dir), str(port)]
        cmd.append("auth" if auth else "open")
        ready = lambda: milvus_answers(uri, MILVUS_ROOT_TOKEN if auth else "")
        with subprocess_server("milvus-standalone", cmd, Path(data_dir), ready, env, timeout_s):
            yield uri
        return

    from milvus import default_server  # optional: benchmark machines only

    default_server.set_base_dir(str(data_dir))
    # It copies os.environ at start; one BLAS thread builds IVF indexes 2.6x faster on 2 cores.
    previous = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        default_server.start()
    finally:
        if previous is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = previous
    try:
        yield f"http://{LOOPBACK}:{default_server.listen_port}"
    finally:
        default_server.stop()  # SIGTERM, then SIGKILL after 1 s: one SIGTERM alone can hang
