"""pass@k, maj@k and their per-category breakdown.

Run: `pytest tests/test_metrics.py`
"""

import itertools

import polars as pl
import pytest

from sharpen.metrics import majority_correct, pass_at_k, per_problem, summarize


@pytest.mark.parametrize("n, c, k, expected", [(10, 0, 1, 0.0), (10, 10, 5, 1.0), (10, 3, 1, 0.3), (4, 1, 2, 0.5)])
def test_pass_at_k_known_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize("n, c, k", [(5, 2, 2), (6, 1, 3), (7, 4, 4)])
def test_pass_at_k_equals_enumeration(n, c, k):
    outcomes = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(outcomes, k))
    assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))


def test_pass_at_k_rejects_k_above_n():
    with pytest.raises(ValueError, match="exceeds"):
        pass_at_k(2, 1, 3)


def frame(rows):
    return pl.DataFrame(rows, schema={"problem_id": pl.String, "category": pl.String, "sample_idx": pl.Int64,
                                      "extracted": pl.String, "correct": pl.Boolean}, orient="row")


def test_majority_ignores_unparseable_and_breaks_ties_by_first_sample():
    samples = frame([
        ("p", "1+1", 0, None, False), ("p", "1+1", 1, None, False), ("p", "1+1", 2, "5", True),  # nulls don't vote
        ("q", "1+1", 0, "3", False), ("q", "1+1", 1, "4", True),  # tie: first sample's answer wins
    ])
    got = dict(majority_correct(samples).iter_rows())
    assert got == {"p": True, "q": False}


def test_summary_over_problems():
    samples = frame([
        ("p", "1+1", -1, "2", True), ("p", "1+1", 0, "2", True), ("p", "1+1", 1, "3", False),
        ("q", "2+2", -1, "9", False), ("q", "2+2", 0, "9", False), ("q", "2+2", 1, "9", False),
    ])
    summary = summarize(per_problem(samples, (1, 2)), (1, 2), 2)
    assert summary["greedy_accuracy"] == 0.5
    assert summary["pass@1"] == pytest.approx(0.25)
    assert summary["pass@2"] == pytest.approx(0.5)
    assert summary["maj@2"] == 0.5
