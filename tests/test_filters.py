"""Filter rules: correct-only/dedup/cap, threshold, keep-all, the problem rules, and per-problem stats.

Run: `pytest tests/test_filters.py`
"""

import polars as pl

from sharpen.filters import decide, kept_examples, problem_stats
from sharpen.params import FilterParams


def rule(**kw) -> FilterParams:
    return FilterParams.model_validate(kw)


def make(rows):
    """rows: (problem_id, sample_idx, completion, correct[, reward])."""
    samples = pl.DataFrame(
        {"round": [1] * len(rows), "problem_id": [r[0] for r in rows], "sample_idx": [r[1] for r in rows],
         "prompt": [r[0] + "=" for r in rows], "completion": [r[2] for r in rows]}
    )
    verdicts = pl.DataFrame(
        {"problem_id": [r[0] for r in rows], "sample_idx": [r[1] for r in rows],
         "reward": [r[4] if len(r) > 4 else 1.0 if r[3] else 0.0 for r in rows], "correct": [r[3] for r in rows]}
    )
    return samples, verdicts


ROWS = [("a", 0, "2", True), ("a", 1, "3", False), ("a", 2, "2", True), ("a", 3, "02", True),
        ("b", 0, "7", False), ("b", 1, "8", False)]


def reasons(decisions):
    return {(r["problem_id"], r["sample_idx"]): r["reason"] for r in decisions.iter_rows(named=True)}


def test_correct_cap_keeps_only_correct():
    d = decide(*make(ROWS), rule(select="correct", cap=10, dedup=False))
    assert reasons(d)[("a", 1)] == "incorrect" and reasons(d)[("b", 0)] == "incorrect"
    assert d.filter("keep")["sample_idx"].to_list() == [0, 2, 3]


def test_dedup_drops_repeated_completions():
    d = decide(*make(ROWS), rule(select="correct", cap=10, dedup=True))
    assert reasons(d)[("a", 2)] == "duplicate"
    assert reasons(d)[("a", 3)] == "kept"  # different text, same answer: kept


def test_cap_limits_per_problem_in_sample_order():
    d = decide(*make(ROWS), rule(select="correct", cap=1, dedup=False))
    assert d.filter("keep")[["problem_id", "sample_idx"]].rows() == [("a", 0)]
    assert reasons(d)[("a", 3)] == "over_cap"


def test_keep_all_ignores_the_verifier():
    d = decide(*make(ROWS), rule(select="all", cap=10, dedup=True))
    assert reasons(d)[("b", 0)] == "kept" and reasons(d)[("a", 1)] == "kept"
    assert reasons(d)[("a", 2)] == "duplicate"


def test_kept_examples_carry_prompt_and_reward():
    samples, verdicts = make(ROWS)
    kept = kept_examples(samples, verdicts, decide(samples, verdicts, rule(select="correct", cap=10, dedup=True)))
    assert kept["completion"].to_list() == ["2", "02"] and kept["reward"].to_list() == [1.0, 1.0]


def test_problem_stats():
    samples, verdicts = make(ROWS)
    problems = pl.DataFrame({"problem_id": ["a", "b"], "category": ["1+1", "1+1"]})
    stats = problem_stats(samples, verdicts, problems)
    a = stats.filter(pl.col("problem_id") == "a").row(0, named=True)
    assert (a["n"], a["n_correct"], a["pass_rate"]) == (4, 3, 0.75)
    assert abs(a["reward_std"] - 0.4330127) < 1e-6
    assert stats.filter(pl.col("problem_id") == "b")["pass_rate"].item() == 0.0


def stats_of(samples, verdicts):
    ids = samples["problem_id"].unique()
    return problem_stats(samples, verdicts, pl.DataFrame({"problem_id": ids, "category": ["x"] * len(ids)}))


GRADED = [("a", 0, "2", True, 1.0), ("a", 1, "3", False, 0.5), ("a", 2, "4", False, 0.0),
          ("b", 0, "7", True, 1.0), ("b", 1, "8", True, 1.0), ("c", 0, "1", False, 0.0), ("c", 1, "9", False, 0.0)]


def test_threshold_keeps_rewards_above_tau_best_first():
    d = decide(*make(GRADED), rule(select="threshold", tau=0.25, cap=1, dedup=True))
    assert reasons(d)[("a", 0)] == "kept" and reasons(d)[("a", 1)] == "over_cap"  # 1.0 outranks 0.5
    assert reasons(d)[("a", 2)] == "below_threshold"


def test_threshold_tau_can_come_from_the_controller():
    d = decide(*make(GRADED), rule(select="threshold", cap=10, dedup=True), tau=0.25)
    assert reasons(d)[("a", 1)] == "kept"


def test_group_band_drops_all_right_and_all_wrong_problems():
    samples, verdicts = make(GRADED)
    d = decide(samples, verdicts, rule(groups=[{"rule": "group_band", "lo": 0.1, "hi": 0.9}]),
               stats=stats_of(samples, verdicts))
    assert {r for (p, _), r in reasons(d).items() if p == "b"} == {"group_band"}  # all right
    assert {r for (p, _), r in reasons(d).items() if p == "c"} == {"group_band"}  # all wrong
    assert reasons(d)[("a", 0)] == "kept"


def test_std_min_drops_problems_whose_rewards_do_not_vary():
    samples, verdicts = make(GRADED)
    d = decide(samples, verdicts, rule(select="all", groups=[{"rule": "std_min", "eps": 0.05}]),
               stats=stats_of(samples, verdicts))
    assert reasons(d)[("b", 0)] == "std_min" and reasons(d)[("c", 0)] == "std_min"
    assert reasons(d)[("a", 2)] == "kept"


def test_difficulty_band_reads_the_ledger_and_passes_unseen_problems():
    samples, verdicts = make(GRADED)
    ledger = pl.DataFrame({"round": [1, 2, 1], "problem_id": ["a", "a", "b"], "category": ["x"] * 3,
                           "pass_rate": [0.5, 1.0, 0.5]})
    d = decide(samples, verdicts, rule(groups=[{"rule": "difficulty_band", "lo": 0.2, "hi": 0.8}]),
               stats=stats_of(samples, verdicts), ledger=ledger)
    assert reasons(d)[("a", 0)] == "difficulty_band"  # its latest round: 1.0
    assert reasons(d)[("b", 0)] == "kept"
    assert reasons(d)[("c", 0)] == "incorrect"  # unseen: judged by the sample rule only


def test_first_problem_rule_names_the_drop():
    samples, verdicts = make(GRADED)
    d = decide(samples, verdicts, rule(groups=[{"rule": "std_min", "eps": 0.05}, {"rule": "group_band", "lo": 0.1, "hi": 0.9}]),
               stats=stats_of(samples, verdicts))
    assert reasons(d)[("b", 0)] == "std_min"
