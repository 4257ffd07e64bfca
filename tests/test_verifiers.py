"""Verifiers: one signature, one result per item; unparseable answers are recorded as such.

Run: `pytest tests/test_verifiers.py`
"""

import pytest

from sharpen.verifiers import BUILTIN, get_verifier
from sharpen.verifiers.exact import exact_integer


@pytest.mark.parametrize(
    "completion, gold, correct, reason",
    [
        ("125", "125", True, "ok"),  # plain answer
        (" 0125 ", "125", True, "ok"),  # whitespace and leading zeros normalise
        ("8+7=15,5+6+1=12|125", "125", True, "ok"),  # scratchpad: answer after the last '|'
        ("124", "125", False, "wrong"),
        ("12 5", "125", False, "unparseable"),  # not one integer
        ("", "125", False, "unparseable"),  # empty completion
        ("8+7=15|", "125", False, "unparseable"),  # scratchpad without an answer
    ],
)
def test_exact_integer(completion, gold, correct, reason):
    (result,) = exact_integer([completion], [gold])
    assert (result.correct, result.reason, result.reward) == (correct, reason, 1.0 if correct else 0.0)


def test_one_result_per_item_in_order():
    results = exact_integer(["1", "2", "x"], ["1", "3", "4"])
    assert [r.reason for r in results] == ["ok", "wrong", "unparseable"]


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 completions but 1 references"):
        exact_integer(["1", "2"], ["1"])


def test_unknown_verifier_lists_allowed():
    with pytest.raises(ValueError, match="allowed: " + ", ".join(BUILTIN)):
        get_verifier("nope")


def _samples(rows):
    import polars as pl

    return pl.DataFrame({"round": [1] * len(rows), "problem_id": [r[0] for r in rows],
                         "sample_idx": list(range(len(rows))), "completion": [r[1] for r in rows]})


def test_majority_label_is_the_most_common_readable_answer():
    from sharpen.verifiers import majority_labels, verify_frame

    samples = _samples([("p", "5"), ("p", "x"), ("p", "7"), ("p", "05"), ("q", "3"), ("q", "4")])
    labels = dict(majority_labels(samples, "exact_integer").select("problem_id", "label").iter_rows())
    assert labels == {"p": "5", "q": "3"}  # "05" reads as 5; q ties, first seen wins
    verdicts = verify_frame(samples, None, "exact_integer", labels="majority")
    assert verdicts["correct"].to_list() == [True, False, False, True, True, False]
    assert verdicts.filter(pl_col_eq("problem_id", "p"))["majority_ratio"].to_list() == [0.5] * 4


def pl_col_eq(name, value):
    import polars as pl

    return pl.col(name) == value


def test_label_accuracy_scores_pseudo_labels_against_the_hidden_truth():
    import polars as pl

    from sharpen.verifiers import label_accuracy, verify_frame

    samples = _samples([("p", "5"), ("p", "5"), ("p", "6"), ("q", "3"), ("q", "3")])
    verdicts = verify_frame(samples, None, "exact_integer", labels="majority")
    truth = pl.DataFrame({"problem_id": ["p", "q"], "answer": ["6", "3"]})
    acc = label_accuracy(verdicts, truth, "exact_integer")
    assert acc["label_accuracy"] == 0.5
    assert acc["true_sample_accuracy"] == 3 / 5
    assert acc["reward_accuracy"] == 2 / 5  # p's three rewards are all wrong about the truth


def test_equal_values_written_differently_vote_together():
    from sharpen.verifiers import majority_labels

    # 1/2 three ways (3 votes) outnumbers 2 written alike (2 votes); the label is the first one's text
    samples = _samples([("p", "so 2"), ("p", "it is 0.5"), ("p", "$\\frac{1}{2}$"), ("p", "2"), ("p", "$1/2$")])
    label, ratio = majority_labels(samples, "math_equiv").select("label", "majority_ratio").row(0)
    assert label == "0.5" and ratio == 3 / 5


def test_maj_at_k_counts_equal_values_as_one_answer():
    from functools import partial

    import polars as pl

    from sharpen.metrics import majority_correct
    from sharpen.verifiers import vote_keys

    samples = pl.DataFrame({"problem_id": ["p"] * 5, "sample_idx": list(range(5)),
                            "extracted": ["2", "0.5", "\\frac{1}{2}", "2", "1/2"],
                            "correct": [False, True, True, False, True]})
    assert majority_correct(samples)["maj_correct"].to_list() == [False]  # as written, "2" wins 2 to 1
    assert majority_correct(samples, partial(vote_keys, "math_equiv"))["maj_correct"].to_list() == [True]


def test_gold_answers_a_verifier_cannot_read_are_named():
    import polars as pl

    from sharpen.verifiers import unreadable_references

    problems = pl.DataFrame({"problem_id": ["a", "b", "c"], "answer": ["3", "four", "7" * 5000]})
    assert [pid for pid, _, _ in unreadable_references(problems, "exact_integer")] == ["b", "c"]
    assert unreadable_references(problems.head(1), "math_equiv") == []


def test_preflight_fails_on_a_reference_the_verifier_cannot_build():
    """What evaluate runs before loading a model: reasoning-gym problems without their source entry
    (the reference evaluate once replaced by the gold answer) fail at once, naming the setting."""
    import polars as pl

    from sharpen.io import ArtifactError
    from sharpen.verifiers import preflight

    problems = pl.DataFrame({"problem_id": ["p1"], "prompt": ["Is it?"], "answer": ["True"], "category": ["x"]})
    with pytest.raises(ArtifactError, match="verify.verifier: reasoning_gym needs every problem to have 'source'"):
        preflight(problems, "reasoning_gym")


def test_preflight_scores_gold_answers_through_the_verifier():
    import polars as pl

    from sharpen.tasks import gym
    from sharpen.verifiers import preflight

    pool, _ = gym.make_splits("ransom_note", {}, 4, 2, 3)
    preflight(pool, "reasoning_gym")  # the gold entry rebuilt and scored: no error
