"""The embedded arithmetic task: deterministic, disjoint splits; answers the verifier accepts.

Run: `pytest tests/test_arithmetic.py`
"""

import random

from sharpen.tasks import arithmetic
from sharpen.verifiers.exact import exact_integer


def splits(seed=3):
    return arithmetic.make_splits(pool_size=300, eval_size=100, min_digits=1, max_digits=3, seed=seed)


def test_splits_are_disjoint():
    pool, held_out = splits()
    assert set(pool["problem_id"]).isdisjoint(held_out["problem_id"])


def test_splits_are_deterministic_in_seed():
    assert splits(3)[0].equals(splits(3)[0])
    assert not splits(3)[0].equals(splits(4)[0])


def test_splits_have_requested_sizes_and_sorted_ids():
    pool, held_out = splits()
    assert (pool.height, held_out.height) == (300, 100)
    assert pool["problem_id"].to_list() == sorted(pool["problem_id"].to_list())


def test_category_is_operand_digit_lengths():
    assert arithmetic.category(7, 345) == "1+3"
    pool, _ = splits()
    assert set(pool["category"]) <= {f"{a}+{b}" for a in (1, 2, 3) for b in (1, 2, 3)}


def test_gold_answers_verify():
    pool, _ = splits()
    results = exact_integer(pool["answer"].to_list(), pool["answer"].to_list())
    assert all(r.correct for r in results)


def test_scratchpad_completion_verifies_and_shows_carries():
    text = arithmetic.completion_for(58, 67, use_scratchpad=True)
    assert text == "8+7=15,5+6+1=12|125"
    assert exact_integer([text], ["125"])[0].correct


def test_pretraining_texts_exclude_held_out():
    _, held_out = arithmetic.make_splits(pool_size=10, eval_size=90, min_digits=1, max_digits=1, seed=0)
    exclude = set(held_out["prompt"])
    texts = arithmetic.pretraining_texts(random.Random(0), 500, min_digits=1, max_digits=1,
                                         use_scratchpad=False, exclude=exclude)
    assert texts and not {p for p, _ in texts} & exclude
