"""Filter rules: ReST-EM's correct-only/dedup/cap, the keep-all control, and per-problem stats.

Run: `pytest tests/test_filters.py`
"""

import polars as pl

from sharpen.filters import decide, kept_examples, problem_stats


def make(rows):
    """rows: (problem_id, sample_idx, completion, correct)."""
    samples = pl.DataFrame(
        {"round": [1] * len(rows), "problem_id": [r[0] for r in rows], "sample_idx": [r[1] for r in rows],
         "prompt": [r[0] + "=" for r in rows], "completion": [r[2] for r in rows]}
    )
    verdicts = pl.DataFrame(
        {"problem_id": [r[0] for r in rows], "sample_idx": [r[1] for r in rows],
         "reward": [1.0 if r[3] else 0.0 for r in rows], "correct": [r[3] for r in rows]}
    )
    return samples, verdicts


ROWS = [("a", 0, "2", True), ("a", 1, "3", False), ("a", 2, "2", True), ("a", 3, "02", True),
        ("b", 0, "7", False), ("b", 1, "8", False)]


def reasons(decisions):
    return {(r["problem_id"], r["sample_idx"]): r["reason"] for r in decisions.iter_rows(named=True)}


def test_correct_cap_keeps_only_correct():
    d = decide(*make(ROWS), rule="correct_cap", cap=10, dedup=False)
    assert reasons(d)[("a", 1)] == "incorrect" and reasons(d)[("b", 0)] == "incorrect"
    assert d.filter("keep")["sample_idx"].to_list() == [0, 2, 3]


def test_dedup_drops_repeated_completions():
    d = decide(*make(ROWS), rule="correct_cap", cap=10, dedup=True)
    assert reasons(d)[("a", 2)] == "duplicate"
    assert reasons(d)[("a", 3)] == "kept"  # different text, same answer: kept


def test_cap_limits_per_problem_in_sample_order():
    d = decide(*make(ROWS), rule="correct_cap", cap=1, dedup=False)
    assert d.filter("keep")[["problem_id", "sample_idx"]].rows() == [("a", 0)]
    assert reasons(d)[("a", 3)] == "over_cap"


def test_keep_all_ignores_the_verifier():
    d = decide(*make(ROWS), rule="keep_all", cap=10, dedup=True)
    assert reasons(d)[("b", 0)] == "kept" and reasons(d)[("a", 1)] == "kept"
    assert reasons(d)[("a", 2)] == "duplicate"


def test_kept_examples_carry_prompt_and_reward():
    samples, verdicts = make(ROWS)
    kept = kept_examples(samples, verdicts, decide(samples, verdicts, rule="correct_cap", cap=10, dedup=True))
    assert kept["completion"].to_list() == ["2", "02"] and kept["reward"].to_list() == [1.0, 1.0]


def test_problem_stats():
    samples, verdicts = make(ROWS)
    problems = pl.DataFrame({"problem_id": ["a", "b"], "category": ["1+1", "1+1"]})
    stats = problem_stats(samples, verdicts, problems)
    a = stats.filter(pl.col("problem_id") == "a").row(0, named=True)
    assert (a["n"], a["n_correct"], a["pass_rate"]) == (4, 3, 0.75)
    assert abs(a["reward_std"] - 0.4330127) < 1e-6
    assert stats.filter(pl.col("problem_id") == "b")["pass_rate"].item() == 0.0
