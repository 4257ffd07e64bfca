"""The report's answer tables on hand-made frames: groups by the verifier's reason, a seeded sample
that does not move, newly solved and failed problems, and what GRPO rounds trained on.

Run: `pytest tests/test_report_samples.py` (a few seconds, no workspace)
"""

import polars as pl

from sharpen.filters import learnable_line
from sharpen.rounds.report_html import charts, svg_chart
from sharpen.rounds.samples import choose, chosen, greedy_groups, training_groups, transitions, trained_on

PROBLEMS = pl.DataFrame({"problem_id": ["p1", "p2", "p3"], "prompt": ["1+1=", "2+2=", "3+3="],
                         "answer": ["2", "4", "6"], "category": ["1+1", "1+1", "1+1"]})


def verdicts(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"problem_id": pl.String, "sample_idx": pl.Int64, "extracted": pl.String,
                                      "correct": pl.Boolean, "reason": pl.String, "label": pl.String}, orient="row")


def evals(rows: list[tuple]) -> pl.DataFrame:
    """EvalSample columns: (problem_id, sample_idx, completion, correct, reason)."""
    return pl.DataFrame(rows, schema={"problem_id": pl.String, "sample_idx": pl.Int64, "completion": pl.String,
                                      "correct": pl.Boolean, "reason": pl.String}, orient="row").with_columns(
        category=pl.lit("1+1"), extracted=pl.col("completion"), round=pl.lit(1))


V = verdicts([("p1", 0, "2", True, "ok", "2"), ("p1", 1, "1+1", False, "restated", "2"),
              ("p2", 0, "5", False, "wrong", "4"), ("p2", 1, "4 or 5", False, "multiple", "4"),
              ("p3", 0, None, False, "unparseable", "6"), ("p3", 1, "6", True, "ok", "6")])
D = pl.DataFrame({"problem_id": ["p1", "p1", "p2", "p2", "p3", "p3"], "sample_idx": [0, 1, 0, 1, 0, 1],
                  "keep": [True, False, True, False, False, True]})


def test_rejected_training_samples_are_grouped_by_the_verifiers_reason():
    rows = training_groups(V, D, PROBLEMS)
    rejected = rows.filter(pl.col("group") == "rejected")
    assert sorted(rejected["reason"]) == ["multiple", "restated", "unparseable", "wrong"]
    assert rejected.filter(pl.col("reason") == "restated")["extracted"].to_list() == ["1+1"]


def test_a_kept_sample_the_verifier_rejected_is_in_both_groups():
    rows = training_groups(V, D, PROBLEMS)  # p2 #0: kept (select: all) though wrong
    p2 = rows.filter((pl.col("problem_id") == "p2") & (pl.col("sample_idx") == 0))
    assert sorted(p2["group"]) == ["kept", "rejected"] and p2["gold"].to_list() == ["4", "4"]


def test_the_label_is_shown_only_where_it_is_not_the_gold():
    v = V.with_columns(label=pl.when(pl.col("problem_id") == "p2").then(pl.lit("5")).otherwise("label"))  # majority
    rows = training_groups(v, D, PROBLEMS)
    assert set(rows.filter(pl.col("label").is_not_null())["problem_id"]) == {"p2"}


def test_greedy_answers_split_into_rewarded_and_rejected_with_prompt_and_gold():
    e = evals([("p1", -1, "2", True, "ok"), ("p1", 0, "2", True, "ok"), ("p2", -1, "2+2", False, "restated")])
    rows = greedy_groups(e, PROBLEMS).sort("problem_id")
    assert rows.select("group", "reason", "prompt", "gold").rows() == [
        ("rewarded greedy", "ok", "1+1=", "2"), ("rejected greedy", "restated", "2+2=", "4")]


def many(n: int) -> pl.DataFrame:
    return pl.DataFrame({"group": ["rejected"] * n, "reason": ["wrong", "restated"] * (n // 2),
                         "problem_id": [f"p{i:04d}" for i in range(n)], "sample_idx": [i % 3 for i in range(n)]})


def test_a_fixed_seed_gives_the_same_sample_whatever_the_row_order():
    frame = many(400)
    a = choose(frame, 20, seed=7)
    b = choose(frame.sample(fraction=1.0, shuffle=True, seed=1), 20, seed=7)
    assert a.equals(b) and a.height == 20


def test_another_seed_gives_another_sample():
    frame = many(400)
    assert not choose(frame, 20, seed=7).equals(choose(frame, 20, seed=8))


def test_rejected_rows_are_sampled_per_reason():
    picked = chosen(many(400), n=10)
    assert dict(picked.group_by("reason").len().iter_rows()) == {"wrong": 10, "restated": 10}


A = evals([("p1", -1, "3", False, "wrong"), ("p1", 0, "2", True, "ok"), ("p1", 1, "3", False, "wrong"),
           ("p2", -1, "4", True, "ok"), ("p2", 0, "4", True, "ok"), ("p2", 1, "4", True, "ok"),
           ("p3", -1, "6", True, "ok"), ("p3", 0, "6", True, "ok"), ("p3", 1, "6", True, "ok")])
B = evals([("p1", -1, "2", True, "ok"), ("p1", 0, "2", True, "ok"), ("p1", 1, "2", True, "ok"),
           ("p2", -1, "2+2", False, "restated"), ("p2", 0, "4", True, "ok"), ("p2", 1, "5", False, "wrong"),
           ("p3", -1, "6", True, "ok"), ("p3", 0, "6", True, "ok"), ("p3", 1, "6", True, "ok"),
           ("p9", -1, "0", True, "ok")])  # p9: not evaluated in round a


def test_newly_solved_and_newly_failed_between_two_rounds():
    t = transitions(A, B, PROBLEMS)
    assert t.select("group", "problem_id").rows() == [("newly failed", "p2"), ("newly solved", "p1")]


def test_a_transition_shows_both_rounds_answers_side_by_side():
    row = transitions(A, B, PROBLEMS).filter(pl.col("problem_id") == "p1").row(0, named=True)
    assert (row["extracted_a"], row["right_a"], row["k_a"]) == ("3", 1, 2)
    assert (row["extracted_b"], row["right_b"], row["k_b"]) == ("2", 2, 2)
    assert (row["prompt"], row["gold"]) == ("1+1=", "2")


def test_grpo_rounds_say_what_they_trained_on_instead_of_a_kept_share():
    train = {"objective": "grpo", "rollouts_from": "online", "groups": 1929, "rollouts": 15432, "problems": 241,
             "rollout_reward_mean": 0.4312, "zero_variance_groups": 0, "examples": 0}
    line = trained_on(train, {"kept": 900, "kept_fraction": 0.1}, {"samples": 9000})
    assert line == "GRPO (online): 1,929 groups (15,432 samples) on 241 problems, rewards mean 0.43"


def test_sft_rounds_say_their_kept_share():
    line = trained_on({"objective": "sft", "examples": 912, "examples_by_origin": {"sampled": 900, "synthesized": 12}},
                      {"kept": 900}, {"samples": 9000})
    assert line == "SFT: 912 examples: kept 900 of 9,000 samples (10.0%) + 12 synthesized"


def test_the_filter_line_says_what_grpo_learns_from():
    g = pl.DataFrame({"problem_id": ["a", "a", "b", "b", "c", "c"], "reward": [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]})
    decided = pl.DataFrame({"reason": ["kept", "incorrect", "kept", "kept", "group_band", "group_band"]})
    assert learnable_line(g, decided) == ("for GRPO: 2 groups (4 samples) passed the problem rules, 1 with mixed "
                                          "rewards; rewards mean 0.75")


def test_chance_and_monitors_get_their_own_chart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no workspace files: the rows are all there is
    rows = [{"round": 0, "tag": "base", "greedy_accuracy": 0.1, "pass@2": 0.2, "chance_accuracy": 0.08,
             "greedy_form_rejected": 0.3},
            {"round": 1, "tag": "(not advanced)", "greedy_accuracy": 0.4, "pass@2": 0.5, "chance_accuracy": 0.08,
             "greedy_form_rejected": 0.1}]
    accuracy, monitors = charts(rows, [])[len("<h2>"):].split("<svg")[1:3]
    assert "chance" not in accuracy and "form_rejected" not in accuracy and "pass@2" in accuracy
    assert "chance" in monitors and "greedy_form_rejected" in monitors


def test_the_round_not_advanced_is_drawn_hollow_and_marked():
    svg = svg_chart("t", [0, 1, 2], {"greedy": [0.1, 0.2, 0.3]}, current=2)
    assert svg.count('fill="#fff"') == 1 and "round 2 (not advanced): 30.0%" in svg and ">2*<" in svg


def test_the_legend_sits_right_of_the_plot():
    import re

    svg = svg_chart("t", [0, 1], {"a": [0.1, 0.9], "b": [0.5, 0.5]})
    plot_right = max(float(x) for x in re.findall(r'<circle cx="([\d.]+)"', svg))
    legend_left = min(float(x) for x in re.findall(r'<g class="lg"[^>]*><title>[^<]*</title><line x1="([\d.]+)"', svg))
    assert legend_left > plot_right
