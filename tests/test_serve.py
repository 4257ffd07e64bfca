"""The scheduled loop on a real Prefect server: serve the deployment, trigger a run, see it complete.

Starts `prefect server start` on loopback with its own PREFECT_HOME, then
`python -m flows.loop serve` in a tiny workspace, then `prefect deployment run`.

Run: `pytest tests/test_serve.py` (about a minute and a half).
"""

import os
import re
import signal
import socket
import subprocess
import time

import httpx
import pytest

from tests.workspace import env, make_workspace, run


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


def wait_for(predicate, timeout_s: float, what: str, logs=()):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(1)
    tails = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in logs)
    pytest.fail(f"timed out waiting for {what}\n{tails}")


def test_served_deployment_runs_a_round(tmp_path):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    environ = env() | {"PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api,
                       "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
    server = start(["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)], tmp_path, environ,
                   server_log)
    served = None
    try:
        def healthy():
            try:
                return httpx.get(f"{api}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 120, "the Prefect server", [server_log])
        (tmp_path / "ws").mkdir()
        ws = make_workspace(tmp_path / "ws", {"loop": {"plateau": None, "stage_retries": 0}})
        served = start(["python", "-m", "flows.loop", "serve", "--rounds", "1"], ws, environ, serve_log)

        def deployed():
            r = httpx.get(f"{api}/deployments/name/sharpen-loop/sharpen-loop", timeout=5)
            return r.status_code == 200

        wait_for(deployed, 120, "the deployment", [serve_log])
        out = subprocess.run(["prefect", "deployment", "run", "sharpen-loop/sharpen-loop"], cwd=ws, env=environ,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", out.stdout).group(1)

        def finished():
            state = httpx.get(f"{api}/flow_runs/{run_id}", timeout=5).json()["state"]["type"]
            return state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")

        wait_for(finished, 400, "the flow run", [serve_log])
        state = httpx.get(f"{api}/flow_runs/{run_id}", timeout=5).json()["state"]
        assert state["type"] == "COMPLETED", (state, serve_log.read_text()[-3000:])
        assert run(ws, "git", "tag", "--list", "round-*").stdout.split() == ["round-1"]
    finally:
        if served:
            stop(served)
        stop(server)
