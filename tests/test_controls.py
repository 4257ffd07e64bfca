"""Reward controls (`verify.reward_control`): rewards that carry no information about correctness.

Run: `pytest tests/test_controls.py` (about 30 s: one real verify stage)
"""

import json

import polars as pl
import pytest

from sharpen.verifiers import VerifyResult, get_verifier
from sharpen.verifiers.controls import controlled
from tests.workspace import make_workspace, run


def _results(n: int, right: int) -> list[VerifyResult]:
    return [VerifyResult("1", 1.0, True, "ok")] * right + [VerifyResult("2", 0.0, False, "wrong")] * (n - right)


def test_a_random_reward_pays_at_the_observed_rate_uncorrelated_with_correctness():
    truth = _results(2000, 600)
    out = controlled(truth, "random", seed=3)
    paid = pl.Series([r.correct for r in out], dtype=pl.Float64)
    right = pl.Series([r.correct for r in truth], dtype=pl.Float64)
    assert abs(paid.mean() - 0.3) < 0.03
    assert abs(pl.DataFrame({"a": paid, "b": right}).select(pl.corr("a", "b")).item()) < 0.06
    assert [r.reason for r in out] == [r.reason for r in truth]  # the verifier's verdict is kept beside it


def test_a_random_reward_is_seeded():
    truth = _results(100, 40)
    assert controlled(truth, "random", seed=1) == controlled(truth, "random", seed=1)
    assert controlled(truth, "random", seed=1) != controlled(truth, "random", seed=2)


def test_format_only_pays_a_wrong_number_in_the_right_form():
    verifier = get_verifier("math_equiv")
    results = verifier(["The answer is 7.", "37 * 6", "I don't know"], ["5", "222", "5"],
                       prompts=["What is 2 + 3?", "What is 37 * 6?", "What is 2 + 3?"])
    assert [r.correct for r in results] == [False, False, False]
    assert [r.reward for r in controlled(results, "format_only", seed=0)] == [1.0, 0.0, 0.0]


def test_online_grpo_rewards_follow_the_control():
    from sharpen.objectives.grpo import verifier_reward

    reward = verifier_reward("math_equiv", "auto", 2, "group", [], control="format_only")
    paid = reward(prompts=["a", "a"], completions=["7", "12 or 13"], reference=["5", "5"], problem_id=["p", "p"],
                  question=["What is 2 + 3?"] * 2)
    assert paid == [1.0, 0.0]


def test_a_judge_has_no_verdicts_to_control(tmp_path):
    from sharpen.params import ParamsError
    from sharpen.config import load_params

    ws = make_workspace(tmp_path / "ws", {"verify": {"labels": "judge", "reward_control": "random"}})
    with pytest.raises(ParamsError, match="verify.reward_control"):
        load_params(ws / "params.yaml")


def test_a_control_round_is_marked_in_the_rounds_table():
    from sharpen.rounds.lineage import control_of

    assert control_of({"reward_control": "random"}, {"select": "correct"}) == "random"
    assert control_of({"reward_control": "none"}, {"select": "all"}) == "no_verifier"
    assert control_of({"reward_control": "none"}, {"select": "correct"}) is None


def test_the_verify_stage_writes_control_rewards_and_logs_the_truth(tmp_path):
    base = {"hidden_size": 64, "intermediate_size": 128, "num_layers": 2, "steps": 150, "lr": 0.003}  # ~half right
    ws = make_workspace(tmp_path / "ws", {"base": base, "task": {"max_digits": 1}, "verify": {"reward_control": "random"}})
    run(ws, "dvc", "repro", "verify")
    verdicts = pl.read_parquet(ws / "data/round/verify/verdicts.parquet")
    metrics = json.loads((ws / "data/round/verify/metrics.json").read_text())
    truly = (verdicts["reason"] == "ok").cast(pl.Float64)
    assert metrics["reward_control"] == "random"
    assert metrics["verifier_sample_accuracy"] == pytest.approx(truly.mean())
    assert truly.sum() > 0 and not (verdicts["correct"] == (verdicts["reason"] == "ok")).all()
