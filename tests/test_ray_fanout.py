"""Generation fanned out over a real Ray cluster on loopback: a head node with no CPUs of its own
and two worker nodes of one CPU each, started with `ray start` as on real machines. The generate
stage's shards, and the evaluate stage's, go to actors on both nodes, and the samples equal the
single-process run's.

Run: `pytest -m slow tests/test_ray_fanout.py` (about 2 minutes)
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import polars as pl
import pytest

from tests.workspace import env, make_workspace, run

pytestmark = pytest.mark.slow
SAMPLES = "data/round/generate/samples.parquet"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    ray = shutil.which("ray", path=str(env()["PATH"]))
    temp = tmp_path_factory.mktemp("ray")
    port = _free_port()
    common = ["--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    try:
        subprocess.run([ray, "start", "--head", "--port", str(port), "--num-cpus", "0", "--include-dashboard", "false",
                        "--temp-dir", str(temp), *common], check=True, env=env(), capture_output=True)
        for _ in range(2):
            subprocess.run([ray, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1", *common], check=True,
                           env=env(), capture_output=True)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray, "stop", "--force"], env=env(), capture_output=True)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("fanout"), {"generate": {"shard_size": 16, "k": 4}})
    run(ws, "dvc", "repro", "generate")
    return ws


def test_shards_fanned_out_over_two_nodes_equal_one_process(ws, cluster):
    alone = pl.read_parquet(ws / SAMPLES)
    import yaml

    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["generate"]["ray"] = {"address": cluster, "workers": 2, "cpus_per_worker": 1}
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(ws, "dvc", "repro", "generate")
    metrics = json.loads((ws / "data/round/generate/metrics.json").read_text())
    assert metrics["ray_nodes"] == 2  # both worker nodes made shards
    assert pl.read_parquet(ws / SAMPLES).equals(alone)


def test_an_unreachable_cluster_names_the_setting(ws):
    import yaml

    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["generate"]["ray"] = {"address": f"127.0.0.1:{_free_port()}"}
    params["seed"] = params.get("seed", 0) + 1  # new samples to make, so the stage has shards to send
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(ws, "dvc", "repro", "generate", check=False)
    assert out.returncode != 0 and "generate.ray.address: no Ray cluster at" in out.stdout + out.stderr


def _set(ws, section: str, values: dict) -> None:
    import yaml

    params = yaml.safe_load((ws / "params.yaml").read_text())
    params[section] = {**params.get(section, {}), **values}
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_evaluation_shards_fanned_out_over_two_nodes_equal_one_process(ws, cluster):
    _set(ws, "evaluate", {"shard_size": 4})
    run(ws, "dvc", "repro", "evaluate_base")
    alone = pl.read_parquet(ws / "data/base/evaluate/samples.parquet")
    _set(ws, "evaluate", {"ray": {"address": cluster, "workers": 2, "cpus_per_worker": 1}})
    run(ws, "dvc", "repro", "evaluate_base")
    metrics = json.loads((ws / "data/base/evaluate/metrics.json").read_text())
    assert metrics["ray_nodes"] == 2
    assert pl.read_parquet(ws / "data/base/evaluate/samples.parquet").equals(alone)


def test_an_unreachable_cluster_for_evaluate_names_its_setting(ws):
    _set(ws, "evaluate", {"ray": {"address": f"127.0.0.1:{_free_port()}"}})
    out = run(ws, "dvc", "repro", "evaluate_base", check=False)
    assert out.returncode != 0 and "evaluate.ray.address: no Ray cluster at" in out.stdout + out.stderr
