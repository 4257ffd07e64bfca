"""The loop on a Prefect work pool: a real `prefect server` on loopback, a process work pool, the
loop deployed to it (`python -m flows.loop deploy --pool`), and a `prefect worker` that runs a
round from it; plus the error for a pool that does not exist.

Run: `pytest -m slow tests/test_work_pool.py` (about two minutes)
"""

import re
import subprocess

import httpx
import pytest

from tests.prefect_server import FINAL, prefect_server, start, stop, wait_for
from tests.workspace import make_workspace, run

pytestmark = pytest.mark.slow  # a real server, a worker and one round: past the fast suite's budget


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pool")
    worker_log = tmp / "worker.log"
    worker = None
    seen: dict = {}
    with prefect_server(tmp) as (api, environ):
        try:
            ws = make_workspace(tmp / "ws", {"loop": {"plateau": None, "stage_retries": 0}})

            def sh(*cmd, check=True):
                out = subprocess.run(cmd, cwd=ws, env=environ, capture_output=True, text=True, timeout=120)
                assert not check or out.returncode == 0, out.stdout + out.stderr
                return out

            seen["missing_pool"] = sh("python", "-m", "flows.loop", "deploy", "--pool", "nowhere", check=False)
            sh("prefect", "work-pool", "create", "team", "--type", "process")
            sh("python", "-m", "flows.loop", "deploy", "--pool", "team", "--rounds", "1")
            worker = start(["prefect", "worker", "start", "--pool", "team"], ws, environ, worker_log)
            out = sh("prefect", "deployment", "run", "sharpen-loop/sharpen-loop").stdout
            run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", out).group(1)

            def flow_run():
                return httpx.get(f"{api}/flow_runs/{run_id}", timeout=5).json()

            wait_for(lambda: flow_run()["state"]["type"] in FINAL, 400, "the worker's run", [worker_log])
            seen["state"] = flow_run()["state"]["type"]
            seen["pool"] = flow_run().get("work_pool_name")
            seen["tags"] = run(ws, "git", "tag", "--list").stdout.split()
            seen["worker_log"] = worker_log.read_text()[-3000:]
        finally:
            if worker:
                stop(worker)
    return seen


def test_a_worker_of_the_pool_runs_the_deployed_loop_to_a_tagged_round(pool_run):
    assert pool_run["state"] == "COMPLETED", pool_run["worker_log"]
    assert pool_run["pool"] == "team" and "round-1" in pool_run["tags"]


def test_deploying_to_a_pool_that_does_not_exist_names_it(pool_run):
    proc = pool_run["missing_pool"]
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "'nowhere'" in lines[-1] and "prefect work-pool create nowhere" in lines[-1], proc.stderr
