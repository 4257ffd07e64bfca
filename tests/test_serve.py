"""The scheduled loop on a real Prefect server: serve the deployment, cancel a run mid-stage through
Prefect, then run it again and see the round resume and complete once.

The module fixture starts `prefect server start` on loopback with its own PREFECT_HOME, then
`python -m flows.loop serve` in a tiny workspace, and plays the scenario with `prefect deployment
run` and `prefect flow-run cancel`; each test checks one thing it observed.

Run: `pytest -m slow tests/test_serve.py` (about two minutes; slow, out of CI's time budget).
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import httpx
import pytest
import yaml

from tests.prefect_server import FINAL, prefect_server, start, stop, wait_for
from tests.workspace import make_workspace, run, stage_processes

pytestmark = pytest.mark.slow  # a real server and two flow runs: 2 minutes, past the fast suite's budget

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Cancel a served run while its base stage trains, then run the deployment again; what was seen."""
    tmp = tmp_path_factory.mktemp("serve")
    serve_log = tmp / "serve.log"
    serving = None
    seen: dict = {}
    with prefect_server(tmp) as (api, environ):
        try:
            (tmp / "ws").mkdir()
            # a base stage long enough to cancel in the middle of
            ws = make_workspace(tmp / "ws", {"base": {"steps": 600}, "loop": {"plateau": None, "stage_retries": 0}})
            seen["ws"] = ws
            serving = start(["python", "-m", "flows.loop", "serve", "--rounds", "1"], ws, environ, serve_log)
            wait_for(lambda: httpx.get(f"{api}/deployments/name/sharpen-loop/sharpen-loop", timeout=5).status_code == 200,
                     120, "the deployment", [serve_log])

            def prefect(*args):
                out = subprocess.run(["prefect", *args], cwd=ws, env=environ, capture_output=True, text=True, timeout=60)
                assert out.returncode == 0, out.stdout + out.stderr
                return out.stdout

            def state(run_id):
                return httpx.get(f"{api}/flow_runs/{run_id}", timeout=5).json()["state"]["type"]

            def deployment_run():
                return re.search(r"UUID:\s*([0-9a-f-]{36})", prefect("deployment", "run", "sharpen-loop/sharpen-loop")).group(1)

            first = deployment_run()
            wait_for(lambda: any("stages.base" in c for c in stage_processes(ws)), 200, "the base stage", [serve_log],
                     every_s=0.3)
            prefect("flow-run", "cancel", first)
            wait_for(lambda: state(first) in FINAL, 120, "the cancelled run to end", [serve_log])
            seen["cancelled_state"] = state(first)
            time.sleep(2)
            seen["left_running"] = stage_processes(ws)
            seen["tags_after_cancel"] = run(ws, "git", "tag", "--list").stdout.split()

            second = deployment_run()
            wait_for(lambda: state(second) in FINAL, 400, "the second run", [serve_log])
            seen["second_state"] = state(second)
            seen["tags"] = run(ws, "git", "tag", "--list").stdout.split()
            seen["round"] = yaml.safe_load((ws / "params.yaml").read_text())["round"]
            seen["stops"] = [json.loads(line) for line in (ws / ".sharpen/loops.jsonl").read_text().splitlines()]
            seen["serve_log"] = serve_log.read_text()[-3000:]
        finally:
            if serving:
                stop(serving)
    return seen


def test_a_cancelled_run_ends_cancelled(served):
    assert served["cancelled_state"] == "CANCELLED", served["serve_log"]


def test_a_cancel_leaves_no_stage_process_running(served):
    assert served["left_running"] == []


def test_a_cancelled_round_is_not_advanced(served):
    assert served["tags_after_cancel"] == []


def test_the_next_run_completes_the_cancelled_round(served):
    assert served["second_state"] == "COMPLETED", served["serve_log"]
    assert served["tags"] == ["round-1"] and served["round"] == 2


def test_the_next_run_records_exactly_one_round(served):
    assert served["stops"][-1]["rounds_done"] == 1 and served["stops"][-1]["first_round"] == 1
