"""The trackers (`tracking:` in params.yaml): a real MLflow server on loopback, TensorBoard event files read
back, W&B offline, and a server nothing listens on costing one warning line, never the round.

One tiny round is run once (`dvc repro`, logging its train steps to the MLflow server); each test advances
its own copy of that workspace. The server is full `mlflow`, which pins pyarrow below the project's, so it
lives in its own environment: `SHARPEN_MLFLOW` names its `mlflow` executable, else .venv-mlflow/bin/mlflow.

Run: `pytest tests/test_tracking.py` (about 4 minutes on a busy 2-core machine: the server and one `dvc repro`, then
an advance per test; the loop test about 50 s). The TensorBoard and W&B tests are also `slow`: they go
through the round's tracker and transformers' `report_to` as MLflow's does, and CI runs MLflow's.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT
from tests.prefect_server import free_port, start, stop, wait_for
from tests.workspace import make_workspace, run, sharpen

MLFLOW = Path(os.environ.get("SHARPEN_MLFLOW", PROJECT / ".venv-mlflow" / "bin" / "mlflow"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The URL of a real `mlflow server` on loopback with its own sqlite store, stopped after the module."""
    import httpx

    if not MLFLOW.exists():
        pytest.skip(f"no MLflow server at {MLFLOW}: `make mlflow-server` (or set SHARPEN_MLFLOW to an `mlflow` executable)")
    tmp = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "server.log"
    proc = start([str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                  "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}", "--artifacts-destination", str(tmp / "artifacts")],
                 tmp, os.environ, log)

    def up() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 120, "the MLflow server", [log])
        yield url
    finally:
        stop(proc)


def _set_tracking(ws: Path, **tracking) -> None:
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["tracking"] = {"kind": "none", "uri": None, "experiment": "sharpen"} | tracking
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def round_ran(tmp_path_factory, server):
    """A workspace whose round 1 ran (train steps logged to the server), not yet advanced."""
    # select all: the 20-step base answers almost nothing right, and train must still really train
    ws = make_workspace(tmp_path_factory.mktemp("ws") / "ws", {
        "filter": {"select": "all"}, "tracking": {"kind": "mlflow", "uri": server, "experiment": "tests"}})
    run(ws, "dvc", "repro")
    return ws


def _copy(ws: Path, tmp_path: Path, **tracking) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(ws, copy, symlinks=True)
    _set_tracking(copy, **tracking)
    return copy


@pytest.fixture(scope="module")
def advanced(round_ran, server, tmp_path_factory):
    """(workspace, advance's output, the round's MLflow runs, the client) after `sharpen advance` in a copy."""
    from mlflow import MlflowClient

    ws = _copy(round_ran, tmp_path_factory.mktemp("advanced"), kind="mlflow", uri=server, experiment="tests")
    proc = sharpen(ws, "advance")
    client = MlflowClient(tracking_uri=server)
    experiment = client.get_experiment_by_name("tests")
    runs = client.search_runs([experiment.experiment_id], "tags.`sharpen.kind` = 'round'")
    return ws, proc, runs, client


def test_the_round_is_one_mlflow_run_with_its_params_metrics_and_gate(advanced):
    ws, _, runs, _ = advanced
    (r,) = runs
    assert r.info.run_name == "round-1" and r.info.status == "FINISHED"
    assert r.data.params["train.epochs"] == "1.0" and r.data.params["round"] == "1"  # the round's params, as it ran
    assert r.data.params["filter.select"] == "all"
    committed = yaml.safe_load(run(ws, "git", "show", "round-1:data/round/evaluate/metrics.json").stdout)
    assert r.data.metrics["greedy_accuracy"] == pytest.approx(committed["greedy_accuracy"])
    assert {"pass_at_1", "pass_at_2", "kept", "generated", "train_s"} <= set(r.data.metrics)  # `sharpen rounds --wide`
    assert r.data.tags["sharpen.gate"] == "accepted" and r.data.metrics["gate.accepted"] == 1.0


def test_the_round_run_leads_back_to_its_lineage(advanced):
    ws, _, runs, _ = advanced
    tags = runs[0].data.tags
    assert tags["sharpen.commit"] == run(ws, "git", "rev-parse", "round-1^{commit}").stdout.strip()
    assert tags["sharpen.round_tag"] == "round-1" and tags["sharpen.lineage"] == "sharpen lineage round-1"
    lock = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
    md5 = {o["path"]: o["md5"] for s in ("generate", "filter", "train") for o in lock[s]["outs"]}
    assert tags["sharpen.md5.samples"] == md5["data/round/generate/samples.parquet"]
    assert tags["sharpen.md5.kept"] == md5["data/round/filter/kept.parquet"]
    assert tags["sharpen.md5.policy"] == md5["data/round/train/model"]
    state = yaml.safe_load((ws / "data/state/state.json").read_text())
    assert tags["sharpen.policy_hash"] == state["policy_hash"]


def test_train_steps_are_a_child_run_with_the_loss_history(advanced):
    _, _, runs, client = advanced
    (child,) = client.search_runs([runs[0].info.experiment_id], f"tags.`mlflow.parentRunId` = '{runs[0].info.run_id}'")
    assert child.info.run_name == "round-1 train (sft)"
    loss = client.get_metric_history(child.info.run_id, "loss")
    assert len(loss) >= 2 and sorted(m.step for m in loss) == [m.step for m in sorted(loss, key=lambda m: m.step)]


def test_the_prefect_loop_nests_its_rounds_under_its_own_run(round_ran, server, tmp_path):
    import sys

    from mlflow import MlflowClient

    ws = _copy(round_ran, tmp_path, kind="mlflow", uri=server, experiment="loop")
    run(ws, sys.executable, "-m", "flows.loop", "--rounds", "1")  # the round's stages are done: DVC skips them
    client = MlflowClient(tracking_uri=server)
    experiment = client.get_experiment_by_name("loop").experiment_id
    (loop,) = client.search_runs([experiment], "tags.`sharpen.kind` = 'loop'")
    (round_,) = client.search_runs([experiment], "tags.`sharpen.kind` = 'round'")
    assert round_.data.tags["mlflow.parentRunId"] == loop.info.run_id and loop.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(loop.info.run_id, "greedy_accuracy")] == [1]


def test_an_unreachable_server_is_one_warning_and_the_round_advances(round_ran, tmp_path):
    with _socket_nobody_listens_on() as dead:
        ws = _copy(round_ran, tmp_path, kind="mlflow", uri=dead, experiment="tests")
        proc = sharpen(ws, "advance", check=False)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "tracking" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: tracking: ") and dead in warnings[0], proc.stderr
    assert run(ws, "git", "tag", "--list", "round-1").stdout.strip() == "round-1"


def test_an_unreachable_server_leaves_training_untracked_with_one_warning(round_ran, tmp_path, capsys, monkeypatch):
    from sharpen.tracking import train_reporting

    with _socket_nobody_listens_on() as dead:
        ws = _copy(round_ran, tmp_path, kind="mlflow", uri=dead)
        monkeypatch.chdir(ws)
        assert train_reporting("sft") == {"report_to": "none"}
    assert len([line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: tracking:")]) == 1


@pytest.mark.slow  # the same report_to path as MLflow's; CI time (`pytest -m slow tests/test_tracking.py`)
def test_tensorboard_event_files_hold_the_round_and_its_train_steps(round_ran, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ws = _copy(round_ran, tmp_path, kind="tensorboard")
    run(ws, "dvc", "repro", "-f", "-s", "train")  # the train steps, now to TensorBoard
    run(ws, "dvc", "repro")
    sharpen(ws, "advance")
    root = ws / ".sharpen/tracking/tensorboard"
    train = EventAccumulator(str(root / "round-1" / "train"))
    train.Reload()
    assert len(train.Scalars("train/loss")) >= 2
    rnd = EventAccumulator(str(root / "round-1"))
    rnd.Reload()
    assert [e.step for e in rnd.Scalars("greedy_accuracy")] == [1]


@pytest.mark.slow  # as tensorboard's
def test_wandb_offline_writes_the_round_run(round_ran, tmp_path):
    ws = _copy(round_ran, tmp_path, kind="wandb", experiment="tests")
    proc = sharpen(ws, "advance")
    assert "warning" not in proc.stderr
    (log,) = (ws / ".sharpen/tracking/wandb").glob("wandb/offline-run-*/run-*.wandb")  # W&B's own record format
    data = log.read_bytes()
    assert b"greedy_accuracy" in data and b"sharpen lineage round-1" in data


class _socket_nobody_listens_on:
    """A loopback URL on a port that is bound but never listened on: connections are refused at once."""

    def __enter__(self) -> str:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc) -> None:
        self.sock.close()
