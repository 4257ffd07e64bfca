"""The recipes' own mechanisms as functions: B-STaR's search, SwS's ledger, budget and synthesizers.

Run: `pytest tests/test_recipe_parts.py`
"""

import random

import polars as pl
import pytest

from sharpen.curriculum import balance_grid, choose, exploration, taus
from sharpen.synthesis import LLMSynthesizer, admit, category_budget, templated, weaknesses
from sharpen.tasks import arithmetic


def dev_verdicts(accuracy_by_temperature: dict[float, list[float]], k: int = 8) -> pl.DataFrame:
    """Dev samples where problem i at temperature t is right in round(acc * k) of k samples."""
    rows = []
    for t, accs in accuracy_by_temperature.items():
        for i, acc in enumerate(accs):
            right = round(acc * k)
            for j in range(k):
                ok = j < right
                rows.append({"temperature": t, "problem_id": f"p{i}", "sample_idx": j, "reward": float(ok),
                             "correct": ok, "extracted": str(j) if not ok else "7"})
    return pl.DataFrame(rows)


def test_taus_sweep_minus_one_to_below_one():
    ts = taus(0.25)
    assert ts == [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75]


def test_balance_score_matches_the_formula():
    grid = balance_grid(dev_verdicts({1.0: [0.5, 0.25]}, k=8), tau_step=0.5, n_star=8)
    at = {r["tau"]: r for r in grid.iter_rows(named=True)}
    # tau 0: only correct selected; p0 4 right → min(4/8,1)*1 = 0.5, p1 2 right → 0.25
    assert at[0.0]["balance"] == pytest.approx((0.5 + 0.25) / 2)
    # tau -1: all 8 selected; p0 → 0.5*4/8, p1 → 0.25*2/8
    assert at[-1.0]["balance"] == pytest.approx((0.25 + 0.0625) / 2)
    assert at[-1.0]["precision"] == pytest.approx(6 / 16)


def test_chosen_temperature_follows_the_policy():
    # a sharp policy: right at low temperature, degrades when heated
    sharp = dev_verdicts({0.5: [1.0, 1.0, 0.75], 1.0: [0.75, 0.5, 0.5], 1.5: [0.25, 0.25, 0.0]})
    # a timid policy: greedy-ish sampling repeats one wrong answer; heat finds right ones
    timid = dev_verdicts({0.5: [0.0, 0.0, 0.125], 1.0: [0.25, 0.125, 0.25], 1.5: [0.5, 0.25, 0.375]})
    t_sharp = choose(balance_grid(sharp, tau_step=0.1, n_star=8))["temperature"]
    t_timid = choose(balance_grid(timid, tau_step=0.1, n_star=8))["temperature"]
    assert (t_sharp, t_timid) == (0.5, 1.5)


def test_exploration_counts_solved_queries_and_distinct_answers():
    v = dev_verdicts({1.0: [0.5, 0.0]}, k=4)
    e = exploration(v, 1.0)
    assert e["pass_at_k"] == 0.5
    assert e["distinct_answers"] == pytest.approx((3 + 4) / 2)  # p0: "7","2","3"; p1: "0".."3"


def ledger(rows):
    return pl.DataFrame(rows, schema=["round", "problem_id", "category", "pass_rate"], orient="row")


def test_weakness_needs_low_best_accuracy_and_no_upward_trend():
    w = weaknesses(ledger([
        (1, "a", "1+1", 0.4), (2, "a", "1+1", 0.2),    # low and falling: weak
        (1, "b", "1+1", 0.1), (2, "b", "1+1", 0.4),    # low but rising: not weak
        (1, "c", "2+2", 0.9), (2, "c", "2+2", 0.6),    # falling but was good: not weak
        (2, "d", "2+2", 0.0),                          # seen once, slope 0: weak
    ]), max_acc_below=0.5, slope_max=0.0)
    got = dict(w.select("problem_id", "weak").iter_rows())
    assert got == {"a": True, "b": False, "c": False, "d": True}
    assert w.filter(pl.col("problem_id") == "a")["slope"].item() == pytest.approx(-0.2)


def test_budget_is_proportional_to_failure_ratio_and_sums_up():
    weak = pl.DataFrame({"category": ["x"] * 4 + ["y"] * 4 + ["z"] * 2,
                         "weak": [True, True, True, False, True, False, False, False, False, False]})
    assert category_budget(weak, 10) == {"x": 8, "y": 2}  # ratios 0.75 : 0.25 : 0


def test_templated_synthesis_stays_in_weak_categories_with_their_attributes():
    weak = pl.DataFrame({"problem_id": ["58+67", "3+4", "120+5"], "category": ["2+2", "1+1", "3+1"],
                         "weak": [True, False, True]})
    out = templated(arithmetic.similar)(weak, {"2+2": 6, "3+1": 3}, random.Random(0), exclude={"58+67"})
    assert out.height == 9 and set(out["category"]) == {"2+2", "3+1"}
    for pid, source in out.select("problem_id", "source_id").iter_rows():
        assert arithmetic.carries(*arithmetic.operands(pid)) == arithmetic.carries(*arithmetic.operands(source))
    assert "58+67" not in out["problem_id"].to_list()
    assert out["answer"].to_list() == [str(sum(arithmetic.operands(p))) for p in out["problem_id"]]


def test_llm_synthesizer_keeps_only_answers_the_samples_agree_on():
    """The LLM pipeline's bookkeeping, driven by a scripted text source in place of a model."""

    def generate(prompts, n, temperature):
        out = []
        for p in prompts:
            if p.startswith("List the mathematical concepts"):
                out.append(["place value\ncarrying"])
            elif p.startswith("Write one new"):
                out.append(["What is 19 + 23?" if "2+2" in p else "What is 5 + 5?"])
            elif "19 + 23" in p:
                out.append(["42"] * 5 + ["41"] * (n - 5))  # agreement 5/8
            else:
                out.append([str(i) for i in range(n)])  # no agreement
        return out

    def extract(texts):
        return [t.strip() if t.strip().isdigit() else None for t in texts]

    weak = pl.DataFrame({"problem_id": ["58+67", "3+4"], "category": ["2+2", "1+1"], "weak": [True, True]})
    out = LLMSynthesizer(generate, extract, votes=8, min_agree=4)(weak, {"2+2": 1, "1+1": 1}, random.Random(0), set())
    assert out.select("prompt", "answer", "category").rows() == [("What is 19 + 23?", "42", "2+2")]


def test_hinted_prompt_carries_the_answer_before_the_problem():
    assert arithmetic.hinted_prompt("58+67=", "125") == "(125)58+67="


def test_admission_keeps_candidates_whose_pass_rate_is_in_the_band():
    candidates = pl.DataFrame({"problem_id": ["easy", "mid", "hard"]})
    verdicts = pl.DataFrame({"problem_id": ["easy"] * 4 + ["mid"] * 4 + ["hard"] * 4,
                             "correct": [True] * 4 + [True, False, True, False] + [False] * 4})
    out = admit(candidates, verdicts, (0.125, 0.875))
    assert dict(out.select("problem_id", "admitted").iter_rows()) == {"easy": False, "mid": True, "hard": False}


def test_sharpen_recipes_lists_every_recipe_with_its_parameters():
    from typer.testing import CliRunner

    from sharpen.cli import app
    from sharpen.recipes import RECIPES

    out = CliRunner().invoke(app, ["recipes"]).output
    for name in RECIPES:
        assert f"\n{name} " in "\n" + out
    assert "synthesize.weakness.band=" in out and "controller.bstar.n_star=" in out


def test_sharpen_recipes_rejects_an_unknown_name():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "sharpen.cli", "recipes", "dpo"], capture_output=True, text=True)
    assert proc.returncode == 1 and "unknown recipe 'dpo'" in proc.stderr and "Traceback" not in proc.stderr
