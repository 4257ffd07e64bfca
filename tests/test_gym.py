"""reasoning-gym tasks: problems rebuilt from their source, a pass only at a score of exactly 1.0.

Run: `pytest tests/test_gym.py`
"""

import pytest

from sharpen.tasks import gym
from sharpen.verifiers import verify_frame
from tests.conftest import samples_for
from sharpen.verifiers.gym import extract_gym_answer, reasoning_gym


@pytest.fixture(scope="module")
def splits():
    return gym.make_splits("basic_arithmetic", {}, pool_size=30, eval_size=10, seed=5)



def test_splits_are_seeded_and_disjoint(splits):
    pool, held_out = splits
    assert (pool.height, held_out.height) == (30, 10)
    assert not set(pool["problem_id"]) & set(held_out["problem_id"])
    assert gym.make_splits("basic_arithmetic", {}, pool_size=30, eval_size=10, seed=5)[1].equals(held_out)


def test_gold_answers_in_tags_pass_and_others_fail(splits):
    pool, _ = splits
    right = verify_frame(samples_for(pool, [f"Thinking...\n<answer>{a}</answer>" for a in pool["answer"]]), pool, "reasoning_gym")
    wrong = verify_frame(samples_for(pool, [f"<answer>{a}1</answer>" for a in pool["answer"]]), pool, "reasoning_gym")
    assert right["correct"].all() and not wrong["correct"].any()


def test_partial_credit_is_not_a_pass():
    """spell_backward scores a reversed word missing its last letter 0.89; only exactly 1.0 counts."""
    problems = gym.load_problems("spell_backward", {}, seed=0, size=20)
    source = problems["source"][0]
    answer = problems["answer"][0]
    partial = answer[:-1]
    assert 0.0 < gym.score(partial, source) < 1.0
    assert reasoning_gym([f"<answer>{partial}</answer>"], [source])[0].reward == 0.0


def test_extraction_prefers_the_last_answer_tag_then_the_last_line():
    assert extract_gym_answer("<answer>1</answer> no, <answer>2</answer>") == "2"
    assert extract_gym_answer("work\n\n 42 \n") == "42"
    assert extract_gym_answer("   ") is None


def test_an_unknown_dataset_names_the_key():
    with pytest.raises(gym.GymError, match="task.dataset/config: reasoning-gym cannot make 'no_such_task'"):
        gym.load_problems("no_such_task", {}, seed=0, size=3)
