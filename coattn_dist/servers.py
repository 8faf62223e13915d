"""Real local servers for the demo, the benchmarks and the tests.

Each context manager starts a server as a subprocess bound to 127.0.0.1 only, waits until it
answers a real request (not merely an open port), yields how to reach it, and stops it on exit:
SIGTERM, then SIGKILL after a grace period. A server that dies or never answers raises
`ServerError` quoting the end of its log, which is written to `<data_dir>/<name>.log`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
_LOG_TAIL_LINES = 30


class ServerError(RuntimeError):
    """A local server did not come up."""


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports: all sockets stay open while picking, so none repeats."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind((LOOPBACK, 0))
        return [s.getsockname()[1] for s in socks]


def free_port() -> int:
    return free_ports(1)[0]


def port_open(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _venv_bin(name: str) -> str:
    """Console scripts live next to the interpreter, whether or not the venv is activated."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise ServerError(f"{name} not found next to {sys.executable}; install the dev extras")
    return str(path)


def _log_tail(log_path: Path) -> str:
    lines = log_path.read_text(errors="replace").splitlines()
    return "\n".join(lines[-_LOG_TAIL_LINES:])


def _stop(proc: subprocess.Popen, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the server's own process group, SIGKILL it if it outlives the grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)
    proc.wait()


def _wait_ready(proc: subprocess.Popen, ready: Callable[[], bool], name: str, log: Path,
                timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"{name} exited with code {proc.returncode}; "
                              f"last lines of {log}:\n{_log_tail(log)}")
        if ready():
            # A server that failed to bind can exit just after another process answered.
            if proc.poll() is None:
                return
            continue
        time.sleep(0.1)
    raise ServerError(f"{name} did not answer within {timeout_s:.0f} s; "
                      f"last lines of {log}:\n{_log_tail(log)}")


@contextlib.contextmanager
def _server(name: str, cmd: list[str], data_dir: Path, ready: Callable[[], bool],
            env: dict[str, str] | None = None,
            timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[subprocess.Popen]:
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"{name}.log"
    with open(log, "ab") as log_file:
        # Own session: a Ctrl-C in the terminal reaches us, and we stop the server in order.
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            _wait_ready(proc, ready, name, log, timeout_s)
            yield proc
        finally:
            _stop(proc)


def _milvus_answers(uri: str) -> bool:
    from pymilvus import MilvusClient

    try:
        client = MilvusClient(uri=uri, timeout=1.0, dedicated=True)
    except Exception:
        return False
    try:
        client.list_collections(timeout=1.0)
        return True
    except Exception:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def milvus_lite_server(data_dir: str | os.PathLike, port: int | None = None,
                       timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[str]:
    """Milvus Lite's gRPC server, for when several processes share one index (a `.db` path
    is locked by the one process that opens it). Yields `http://127.0.0.1:PORT`."""
    port = port or free_port()
    uri = f"http://{LOOPBACK}:{port}"
    cmd = [_venv_bin("milvus-lite"), "server", "--data-dir", str(data_dir),
           "--host", LOOPBACK, "--port", str(port)]
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # probes fail until it is up
    with _server("milvus-lite", cmd, Path(data_dir), lambda: _milvus_answers(uri),
                 timeout_s=timeout_s):
        yield uri


def _s3_answers(endpoint_url: str, key: str, secret: str) -> bool:
    import botocore.session
    from botocore.config import Config

    client = botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint_url, aws_access_key_id=key, aws_secret_access_key=secret,
        region_name="us-east-1", config=Config(retries={"max_attempts": 1},
                                               connect_timeout=1, read_timeout=2))
    try:
        client.list_buckets()
        return True
    except Exception:
        return False


# Every listener of `weed mini` that is on by default and that we keep (webdav, Iceberg and
# Lance are switched off). gRPC ports default to HTTP port + 10000, so they are set too.
_WEED_PORT_FLAGS = ("s3.port", "s3.port.grpc", "master.port", "master.port.grpc",
                    "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
                    "admin.port", "admin.port.grpc")


def _weed_command(data_dir: Path, ports: dict[str, int]) -> list[str]:
    return [_venv_bin("weed"), "mini", f"-dir={data_dir}", f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}", "-admin.ui=false", "-master.telemetry=false",
            "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            *(f"-{flag}={port}" for flag, port in ports.items())]


def _remove_weed_sockets(ports: dict[str, int]) -> None:
    """weed can leave its /tmp/seaweedfs-*-PORT.sock files behind; test runs should not litter."""
    for port in ports.values():
        for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            with contextlib.suppress(OSError):
                sock.unlink()


@contextlib.contextmanager
def seaweedfs_s3(data_dir: str | os.PathLike, access_key: str, secret_key: str,
                 port: int | None = None,
                 timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[dict[str, str]]:
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
    creds = {"endpoint_url": f"http://{LOOPBACK}:{ports['s3.port']}",
             "key": access_key, "secret": secret_key}
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    try:
        with _server("seaweedfs", _weed_command(data_dir, ports), data_dir,
                     lambda: _s3_answers(**creds), env=env, timeout_s=timeout_s):
            yield creds
    finally:
        _remove_weed_sockets(ports)


def aws_env(s3: dict[str, str], region: str = "us-east-1") -> dict[str, str]:
    """The standard AWS variables for an endpoint from `seaweedfs_s3` (region: s3fs needs one
    to create buckets, and must not get it through client_kwargs)."""
    return {"AWS_ENDPOINT_URL": s3["endpoint_url"], "AWS_ACCESS_KEY_ID": s3["key"],
            "AWS_SECRET_ACCESS_KEY": s3["secret"], "AWS_DEFAULT_REGION": region}


# Runs Milvus standalone in another interpreter (the venv that holds the `milvus` package) until
# SIGTERM; its stop() then ends the C++ server (SIGTERM, SIGKILL after 1 s).
_MILVUS_STANDALONE_SCRIPT = """
import signal, sys
from milvus import default_server as server
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
server.set_base_dir(sys.argv[1])
server.listen_port = int(sys.argv[2])
server.start()
signal.sigwait({signal.SIGTERM, signal.SIGINT})
server.stop()
"""


@contextlib.contextmanager
def milvus_standalone(data_dir: str | os.PathLike, python: str | None = None,
                      timeout_s: float = 180.0) -> Iterator[str]:
    """The real Milvus C++ server from the PyPI package `milvus` (2.3.5), for scale benchmarks
    only: its gRPC ports listen on every interface. Yields `http://127.0.0.1:PORT`.

    `python`: an interpreter whose environment holds `milvus` (it pins packages that do not
    belong in the project's venv); without it, `milvus` is imported here.
    """
    if python is not None:
        port = free_port()
        uri = f"http://{LOOPBACK}:{port}"
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        cmd = [python, "-c", _MILVUS_STANDALONE_SCRIPT, str(data_dir), str(port)]
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # probes fail until it is up
        with _server("milvus-standalone", cmd, Path(data_dir), lambda: _milvus_answers(uri),
                     env=env, timeout_s=timeout_s):
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
