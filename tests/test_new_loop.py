"""Changing the recipe, model, task or base settings mid-loop is refused until the user starts a
new loop from the base (`sharpen new-loop`), which is recorded in the loop state and committed.

Run: `pytest tests/test_new_loop.py`
"""

import json

import pytest

from sharpen.io import ArtifactError
from sharpen.config import load_params
from sharpen.rounds.state import LoopState, check_loop_identity, loop_identity, write_state
from tests.test_dpo import _params_file
from tests.workspace import make_workspace, run, sharpen


def _promoted_under(state_dir, params) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    write_state(LoopState(policy="policy", policy_round=3, policy_hash="abc", trained_under=loop_identity(params)),
                state_dir)


def test_a_round_under_another_recipe_is_refused_with_the_ways_forward(tmp_path):
    _promoted_under(tmp_path / "state", load_params(_params_file(tmp_path, {"recipe": "rest-em"})))
    star = load_params(_params_file(tmp_path, {"recipe": "star"}))
    with pytest.raises(ArtifactError, match=r"recipe.*rest-em -> star.*sharpen new-loop"):
        check_loop_identity(star, tmp_path / "state")


def test_a_changed_task_setting_is_refused(tmp_path):
    _promoted_under(tmp_path / "state", load_params(_params_file(tmp_path, {})))
    with pytest.raises(ArtifactError, match="task"):
        check_loop_identity(load_params(_params_file(tmp_path, {"task": {"max_digits": 2}})), tmp_path / "state")


def test_the_same_settings_pass(tmp_path):
    params = load_params(_params_file(tmp_path, {"train": {"lr": 0.001}}))  # train settings may change
    _promoted_under(tmp_path / "state", load_params(_params_file(tmp_path, {})))
    check_loop_identity(params, tmp_path / "state")


def test_new_loop_starts_from_base_records_the_switch_and_commits(tmp_path):
    ws = make_workspace(tmp_path / "ws", {"recipe": "star"})
    rest_em = load_params(_params_file(tmp_path, {"recipe": "rest-em"}))
    _promoted_under(ws / "data/state", rest_em)
    (ws / "data/state/ledger.parquet").write_bytes(b"old loop's data")
    run(ws, "git", "add", "-A")
    run(ws, "git", "commit", "-qm", "a loop at round 3")
    sharpen(ws, "new-loop")
    state = json.loads((ws / "data/state/state.json").read_text())
    assert state["policy"] == "base" and state["trained_under"] is None
    assert state["new_loops"][0]["from"]["recipe"] == "rest-em" and state["new_loops"][0]["to"]["recipe"] == "star"
    assert not (ws / "data/state/ledger.parquet").exists()
    assert run(ws, "git", "status", "--porcelain").stdout.strip() == ""
    assert "new loop" in run(ws, "git", "log", "-1", "--format=%s").stdout


def test_new_loop_from_the_base_is_refused(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    proc = sharpen(ws, "new-loop", check=False)
    assert proc.returncode != 0 and "already starts from the base" in proc.stderr + proc.stdout
