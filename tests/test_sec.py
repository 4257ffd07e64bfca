"""SEC, the self-evolving curriculum controller: arm rewards are the mean |advantage| of a
category's samples, Q moves toward the categories with the largest, and the round's problems are
drawn by softmax(Q / tau).

Run: `pytest tests/test_sec.py`
"""

import polars as pl
import pytest

from sharpen.curriculum import arm_rewards, draw_by_category, sec_probabilities, sec_update
from sharpen.filters import problem_stats
from sharpen.params import ParamsError
from sharpen.config import load_params
from tests.test_dpo import _params_file


def _stats(rewards: dict[str, list[float]]) -> pl.DataFrame:
    """ProblemStats for problems '<category>-<i>' with the given sample rewards."""
    rows = [(pid, i, r) for pid, rs in rewards.items() for i, r in enumerate(rs)]
    samples = pl.DataFrame({"round": [1] * len(rows), "problem_id": [r[0] for r in rows], "sample_idx": [r[1] for r in rows]})
    verdicts = samples.with_columns(reward=pl.Series([r[2] for r in rows]), correct=pl.Series([r[2] == 1.0 for r in rows]))
    problems = pl.DataFrame({"problem_id": list(rewards), "category": [p.split("-")[0] for p in rewards]})
    return problem_stats(samples, verdicts, problems)


def test_the_arm_reward_is_the_mean_absolute_advantage_of_the_categorys_samples():
    stats = _stats({"mid-0": [1, 0, 1, 0], "easy-0": [1, 1, 1, 1], "skew-0": [1, 0, 0, 0]})
    assert arm_rewards(stats) == {"easy": 0.0, "mid": 0.5, "skew": pytest.approx(0.375)}


def test_q_moves_toward_the_category_with_the_largest_mean_absolute_advantage():
    q = {"easy": 0.0, "mid": 0.0, "hard": 0.0}
    rewards = arm_rewards(_stats({"mid-0": [1, 0, 1, 0], "easy-0": [1, 1, 1, 1], "hard-0": [0, 0, 0, 1]}))
    q = sec_update(q, rewards, alpha=0.5)
    p = sec_probabilities(q, tau=0.2)
    assert q["mid"] > q["hard"] > q["easy"] == 0.0 and p["mid"] > p["hard"] > p["easy"]
    assert sum(p.values()) == pytest.approx(1.0)


def test_categories_the_round_did_not_draw_keep_their_q():
    assert sec_update({"a": 0.4, "b": 0.2}, {"b": 0.0}, alpha=0.5) == {"a": 0.4, "b": 0.1}


def test_the_draw_follows_the_category_probabilities():
    pool = pl.DataFrame({"problem_id": [f"{c}-{i}" for c in "abc" for i in range(50)],
                         "category": [c for c in "abc" for _ in range(50)]})
    drawn = draw_by_category(pool, {"a": 0.8, "b": 0.2, "c": 0.0}, 40, seed=0)
    counts = dict(drawn.group_by("category").len().iter_rows())
    assert drawn.height == 40 and "c" not in counts and counts["a"] > counts["b"]
    assert drawn.equals(draw_by_category(pool, {"a": 0.8, "b": 0.2, "c": 0.0}, 40, seed=0))  # seeded


def test_sec_needs_a_number_of_problems_per_round(tmp_path):
    with pytest.raises(ParamsError, match=r"generate\.problems_per_round"):
        load_params(_params_file(tmp_path, {"recipe": "sec", "generate": {"problems_per_round": 0}}))
