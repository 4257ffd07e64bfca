"""The gate rule and the loop state file.

Run: `pytest tests/test_state.py`
"""

import pytest

from sharpen.io import ArtifactError
from sharpen.rounds.gate import gate
from sharpen.rounds.git import pipeline_outputs
from sharpen.rounds.state import AdvanceError, LoopState, read_state, write_state
from tests.conftest import PROJECT


def test_accept_gate_always_promotes():
    assert gate("accept", "greedy_accuracy", 0.0, {"greedy_accuracy": 0.1}, {"greedy_accuracy": 0.9}).accepted


def test_no_regression_rejects_a_drop_beyond_tolerance():
    g = gate("no_regression", "greedy_accuracy", 0.05, {"greedy_accuracy": 0.80}, {"greedy_accuracy": 0.9})
    assert not g.accepted and "regression" in g.reason


def test_no_regression_accepts_within_tolerance():
    assert gate("no_regression", "greedy_accuracy", 0.05, {"greedy_accuracy": 0.86}, {"greedy_accuracy": 0.9}).accepted


def test_unknown_gate_metric_lists_the_round_metrics():
    with pytest.raises(AdvanceError, match="allowed: greedy_accuracy, pass@1"):
        gate("accept", "acc", 0.0, {"greedy_accuracy": 0.5, "pass@1": 0.4}, None)


def test_pipeline_outputs_are_the_uncached_metrics_and_lock():
    import os

    cwd = os.getcwd()
    os.chdir(PROJECT)
    try:
        outs = pipeline_outputs()
    finally:
        os.chdir(cwd)
    assert {"dvc.lock", "params.yaml", "data/round/evaluate/metrics.json", "data/round/train/loss.csv"} <= outs
    assert "data/round/train/model" not in outs  # cached by DVC, not committed to git


def test_state_roundtrip(tmp_path):
    state = LoopState(policy="policy", policy_round=2, policy_hash="abc")
    write_state(state, tmp_path)
    assert read_state(tmp_path) == state


def test_corrupt_state_names_the_file(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="state.json: not valid JSON"):
        read_state(tmp_path)


def test_state_with_unknown_policy_is_rejected(tmp_path):
    (tmp_path / "state.json").write_text('{"policy": "elsewhere"}')
    with pytest.raises(ArtifactError, match="invalid loop state"):
        read_state(tmp_path)
