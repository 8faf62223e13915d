"""Milvus Lite's gRPC server as a subprocess, and the subprocess-server helper it runs on.

A server is started bound to 127.0.0.1 only, waited for until it answers a real request (not
merely an open port), and stopped on exit: SIGTERM, then SIGKILL after a grace period. One that
dies or never answers raises `ServerError` quoting the end of its log, `<data_dir>/<name>.log`.
The tests' harness starts SeaweedFS and Milvus standalone with the same helper.
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


def venv_bin(name: str) -> str:
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


def _wait_ready(
    proc: subprocess.Popen, ready: Callable[[], bool], name: str, log: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(
                f"{name} exited with code {proc.returncode}; last lines of {log}:\n{_log_tail(log)}"
            )
        if ready():
            # A server that failed to bind can exit just after another process answered.
            if proc.poll() is None:
                return
            continue
        time.sleep(0.1)
    raise ServerError(
        f"{name} did not answer within {timeout_s:.0f} s; last lines of {log}:\n{_log_tail(log)}"
    )


@contextlib.contextmanager
def subprocess_server(
    name: str,
    cmd: list[str],
    data_dir: Path,
    ready: Callable[[], bool],
    env: dict[str, str] | None = None,
    timeout_s: float = STARTUP_TIMEOUT_S,
) -> Iterator[subprocess.Popen]:
    """Runs `cmd` until the block exits, once `ready()` holds; its output goes to the log."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"{name}.log"
    with open(log, "ab") as log_file:
        # Own session: a Ctrl-C in the terminal reaches us, and we stop the server in order.
        proc = subprocess.Popen(
            cmd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_ready(proc, ready, name, log, timeout_s)
            yield proc
        finally:
            _stop(proc)


def milvus_answers(uri: str, token: str = "") -> bool:
    """A readiness probe for any Milvus server (`token` for one with authentication)."""
    from pymilvus import MilvusClient

    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # probes fail until it is up
    try:
        client = MilvusClient(uri=uri, token=token, timeout=1.0, dedicated=True)
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
def milvus_lite_server(
    data_dir: str | os.PathLike, port: int | None = None, timeout_s: float = STARTUP_TIMEOUT_S
) -> Iterator[str]:
    """Milvus Lite's gRPC server, for when several processes share one index (a `.db` path
    is locked by the one process that opens it). Yields `http://127.0.0.1:PORT`."""
    port = port or free_port()
    uri = f"http://{LOOPBACK}:{port}"
    cmd = [venv_bin("milvus-lite"), "server", "--data-dir", str(data_dir)]
    cmd += ["--host", LOOPBACK, "--port", str(port)]
    with subprocess_server(
        "milvus-lite", cmd, Path(data_dir), lambda: milvus_answers(uri), timeout_s=timeout_s
    ):
        yield uri
