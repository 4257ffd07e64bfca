"""`sharpen compare`: recipes × seeds × rounds in workspaces of their own, paired against a control.

Run: `pytest tests/test_compare.py` (about 2 minutes: four tiny one-round runs)
"""

import json

import pytest

from sharpen.compare import CompareError, arms_for, paired, summary
from tests.workspace import make_workspace, sharpen


def test_the_paired_interval_is_the_t_interval_of_the_differences():
    p = paired([0.50, 0.60, 0.55], [0.40, 0.45, 0.50])  # differences 0.10, 0.15, 0.05: sd 0.05
    assert p["mean"] == pytest.approx(0.10)
    half = 4.303 * 0.05 / 3 ** 0.5  # t(0.975, 2)
    assert p["ci95"] == pytest.approx([0.10 - half, 0.10 + half])


def test_a_summary_is_the_mean_and_sample_sd():
    s = summary([0.2, 0.4])
    assert (s["mean"], s["n"]) == (pytest.approx(0.3), 2) and s["sd"] == pytest.approx(0.1414, abs=1e-4)


def test_each_recipe_gets_each_control_as_an_arm():
    arms = arms_for(["rest-em", "grpo"], ["random", "no_verifier"])
    assert [a.name for a in arms] == ["rest-em", "rest-em:random", "rest-em:no_verifier", "grpo", "grpo:random",
                                      "grpo:no_verifier"]
    assert arms[1].overrides == {"verify": {"reward_control": "random"}}
    with pytest.raises(CompareError, match="--controls"):
        arms_for(["rest-em"], ["coin"])
    assert [a.name for a in arms_for(["rest-em", "rest-em:format_only", "grpo"], [])] == [
        "rest-em", "rest-em:format_only", "grpo"]


def test_a_comparison_runs_every_arm_and_seed_on_one_shared_base(tmp_path):
    ws = make_workspace(tmp_path / "project")
    out = tmp_path / "runs"
    sharpen(ws, "compare", "--recipes", "rest-em", "--controls", "random", "--seeds", "0,1", "--rounds", "1",
            "--jobs", "2", "--out", str(out))
    table = json.loads((out / "compare.json").read_text())
    assert set(table["arms"]) == {"rest-em", "rest-em:random"}
    greedy = table["arms"]["rest-em"]["rounds"]["1"]["greedy_accuracy"]
    assert greedy["n"] == 2 and len(greedy["values"]) == 2
    diff = table["paired"]["rest-em"]
    assert diff["against"] == "rest-em:random" and diff["rounds"]["1"]["greedy_accuracy"]["n"] == 2
    # the base model was made once, in the template: every run holds the cache's own file (a hardlink)
    weights = [p / "data/base/model/model.safetensors" for p in out.iterdir() if (p / ".git").exists()]
    assert len(weights) == 5 and len({w.stat().st_ino for w in weights}) == 1
    # a control run is marked as one
    rounds = json.loads(sharpen(out / "rest-em-random-seed0", "rounds", "--json").stdout)
    assert [r.get("control") for r in rounds if r["round"] == 1] == ["random"]
