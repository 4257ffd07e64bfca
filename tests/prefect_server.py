"""A real `prefect server start` on loopback for the tests that schedule the loop through Prefect
(tests/test_serve.py, tests/test_work_pool.py), and the helpers they share."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.workspace import env

FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, cwd, environ, log):
    return subprocess.Popen(cmd, cwd=cwd, env=environ, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def wait_for(predicate, timeout_s: float, what: str, logs=(), every_s: float = 1.0):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(every_s)
    tails = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in logs)
    pytest.fail(f"timed out waiting for {what}\n{tails}")


@contextmanager
def prefect_server(tmp: Path):
    """(the API URL, the environment that points Prefect at it) while a server runs with its own home in `tmp`."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    environ = env() | {"PREFECT_HOME": str(tmp / "prefect-home"), "PREFECT_API_URL": api,
                       "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    log = tmp / "server.log"
    server = start(["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)], tmp, environ, log)
    try:
        def healthy():
            try:
                return httpx.get(f"{api}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 120, "the Prefect server", [log])
        yield api, environ
    finally:
        stop(server)
