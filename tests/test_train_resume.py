"""Training resumes after a kill: from its last complete checkpoint, to the uninterrupted result;
checkpoints from other inputs, or cut short while saving, are never resumed.

Run: `pytest tests/test_train_resume.py` (about a minute and a half: real `dvc repro` subprocesses).
"""

import json
import shutil
import subprocess

import pytest

from sharpen.objectives.trainer import last_complete_checkpoint
from tests.workspace import env, make_workspace, run

TRAIN = "data/round/train"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A round up to the filter, training with a checkpoint every 2 steps."""
    ws = make_workspace(tmp_path_factory.mktemp("train-resume"), {
        "filter": {"select": "all", "cap": 2},  # keep every sample: enough steps whatever the tiny base answers
        "train": {"checkpoint_steps": 2, "epochs": 2},
    })
    run(ws, "dvc", "repro", "filter")
    return ws


def trained(ws) -> dict:
    metrics = json.loads((ws / TRAIN / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k != "wall_s"} | {"loss.csv": (ws / TRAIN / "loss.csv").read_text()}


def repro_train(ws, fault: str | None = None) -> subprocess.CompletedProcess:
    """`dvc repro train --force` (forced: a killed train leaves the last good model, and its lock entry, in place)."""
    extra = {"SHARPEN_FAULT": fault} if fault else {}
    proc = subprocess.run(["dvc", "repro", "train", "--force"], cwd=ws, env=env() | extra, capture_output=True,
                          text=True, start_new_session=True)
    expected = -9 if fault else 0
    assert proc.returncode == expected, f"exit {proc.returncode}, expected {expected}\n{proc.stderr[-2000:]}"
    return proc


@pytest.fixture(scope="module")
def resumed(ws, tmp_path_factory):
    """Train uninterrupted; then kill a train after step 5 and rerun it. What was seen."""
    repro_train(ws)
    seen = {"uninterrupted": trained(ws), "left_after_success": (ws / TRAIN / ".checkpoints").exists()}
    repro_train(ws, "train-step@5")
    seen["checkpoints_after_kill"] = sorted(p.name for p in (ws / TRAIN / ".checkpoints").glob("*/checkpoint-*"))
    (kept,) = (ws / TRAIN / ".checkpoints").iterdir()
    seen["a_checkpoint"] = tmp_path_factory.mktemp("saved") / "checkpoint-4"
    shutil.copytree(kept / "checkpoint-4", seen["a_checkpoint"])
    seen["rerun_out"] = repro_train(ws).stdout
    seen["resumed"] = trained(ws)
    seen["left_after_resume"] = (ws / TRAIN / ".checkpoints").exists()
    return seen


def test_the_fixture_trains_long_enough_to_checkpoint(resumed):
    assert resumed["uninterrupted"]["steps"] >= 6


def test_only_the_last_checkpoint_is_kept(resumed):
    assert resumed["checkpoints_after_kill"] == ["checkpoint-4"]


def test_a_killed_train_resumes_from_its_last_checkpoint(resumed):
    assert "train: resuming from checkpoint-4" in resumed["rerun_out"]


def test_a_resumed_train_ends_where_an_uninterrupted_one_ends(resumed):
    assert resumed["resumed"] == resumed["uninterrupted"]  # same model hash, same loss curve


def test_checkpoints_are_removed_once_the_model_is_written(resumed):
    assert not resumed["left_after_success"] and not resumed["left_after_resume"]


def test_checkpoints_from_other_inputs_are_never_resumed(ws, resumed):
    stale = ws / TRAIN / ".checkpoints" / "0123456789abcdef"
    shutil.copytree(resumed["a_checkpoint"], stale / "checkpoint-4")
    out = repro_train(ws).stdout
    assert "resuming" not in out
    assert not stale.exists()


def test_a_checkpoint_cut_short_while_saving_is_skipped_and_removed(tmp_path, resumed):
    shutil.copytree(resumed["a_checkpoint"], tmp_path / "checkpoint-4")
    shutil.copytree(resumed["a_checkpoint"], tmp_path / "checkpoint-6")
    (tmp_path / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')  # killed mid-write
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert not (tmp_path / "checkpoint-6").exists()
