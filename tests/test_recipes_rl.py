"""The reward-learning recipes through the real pipeline (`dvc repro` and `sharpen advance` in a
throwaway workspace), each checked for what defines it across rounds.

Run: `pytest -m slow tests/test_recipes_rl.py` (several minutes: two rounds per recipe).
"""

import json

import polars as pl
import pytest

from tests.workspace import make_workspace, run, sharpen

pytestmark = pytest.mark.slow

BASE = {"steps": 300, "hidden_size": 64, "intermediate_size": 128}  # good enough to leave mixed groups


def metrics(ws, stage):
    return json.loads((ws / f"data/round/{stage}/metrics.json").read_text())


def two_rounds(ws) -> list[dict]:
    """Run round 1, advance (every round accepted), run round 2; what each round's stages wrote."""
    seen = []
    for _ in range(2):
        run(ws, "dvc", "repro")
        seen.append({stage: metrics(ws, stage) for stage in ("controller", "filter", "train")})
        seen[-1]["pairs"] = pl.read_parquet(ws / "data/round/filter/pairs.parquet")
        sharpen(ws, "advance")
    return seen


@pytest.fixture(scope="module")
def spin(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("spin"), {"recipe": "spin", "base": BASE,
                                                          "generate": {"max_new_tokens": 4}, "advance": {"gate": "accept"}})
    return [*two_rounds(ws), ws]


def test_spins_reference_is_the_previous_policy(spin):
    first, second, _ = spin
    assert second["train"]["reference_hash"] == first["train"]["model_hash"] != first["train"]["reference_hash"]


def test_spin_trains_on_this_and_the_previous_rounds_pairs(spin):
    first, second, _ = spin
    assert set(first["pairs"]["round"]) == {1} and set(second["pairs"]["round"]) == {1, 2}
    assert second["filter"]["pairs_from_previous_round"] == first["pairs"].height
    assert (second["pairs"]["chosen_idx"] == -1).all()  # chosen is always the gold completion


def test_lineage_and_diff_name_what_dpo_trained_on(spin):
    first, second, ws = spin
    out = sharpen(ws, "lineage", "round-2").stdout
    assert "DPO of round 1" in out and f"{second['pairs'].height} preference pairs" in out
    volumes = json.loads(sharpen(ws, "diff", "round-1", "round-2", "--json").stdout)["volumes"]
    assert volumes["pairs"] == {"round-1": first["pairs"].height, "round-2": second["pairs"].height}


def test_the_report_plots_dpos_training_signal(spin, tmp_path):
    ws = spin[2]
    sharpen(ws, "report", "--out", str(tmp_path / "report.html"))
    assert "DPO training signal" in (tmp_path / "report.html").read_text()


@pytest.fixture(scope="module")
def sec(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("sec"), {
        "recipe": "sec", "base": BASE, "advance": {"gate": "accept"},
        "generate": {"k": 4, "max_new_tokens": 4, "problems_per_round": 24},
        "train": {"batch_size": 8, "grpo": {"steps": 2, "num_generations": 4}},
    })
    seen = two_rounds(ws)
    seen.append(ws)
    return seen


def test_secs_first_round_draws_uniformly(sec):
    probabilities = sec[0]["controller"]["probabilities"]
    assert len(set(probabilities.values())) == 1 and sec[0]["controller"]["updated_from_round"] is None


def test_secs_q_is_updated_from_the_last_rounds_arm_rewards(sec):
    control = sec[1]["controller"]
    rewards = control["arm_rewards_used"]
    assert control["updated_from_round"] == 1 and rewards
    best = max(rewards, key=rewards.get)
    assert control["q"][best] == pytest.approx(0.5 * rewards[best]) == max(control["q"].values())


def test_secs_q_is_committed_with_the_loop_state(sec):
    ws = sec[2]
    history = [json.loads(line) for line in (ws / "data/state/controller.jsonl").read_text().splitlines()]
    assert [h["round"] for h in history] == [1, 2] and all("arm_rewards" in h for h in history)
    assert run(ws, "git", "status", "--porcelain", "data/state").stdout.strip() == ""


@pytest.fixture(scope="module")
def rest_grpo(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("rest-grpo"), {
        "recipe": "rest-grpo", "base": BASE, "generate": {"k": 4, "max_new_tokens": 4},
        "train": {"batch_size": 8, "grpo": {"steps": 3, "epochs": None, "num_generations": 4}},
    })
    run(ws, "dvc", "repro", "train")
    return ws


def test_rest_grpo_trains_on_the_rounds_own_samples(rest_grpo):
    rollouts = pl.read_parquet(rest_grpo / "data/round/train/rollouts.parquet")
    samples = pl.read_parquet(rest_grpo / "data/round/generate/samples.parquet")
    stored = set(zip(samples["problem_id"], samples["completion"], strict=True))
    assert rollouts.height and set(zip(rollouts["problem_id"], rollouts["completion"], strict=True)) <= stored
    assert metrics(rest_grpo, "train")["rollouts_from"] == "round"


@pytest.fixture(scope="module")
def self_reward(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("self-reward"), {
        "recipe": "self-reward", "base": BASE, "generate": {"max_new_tokens": 4},
        "verify": {"labels": "gold"}, "filter": {"pairs": {"scores": "verifier"}},  # the stand-in judge
    })
    run(ws, "dvc", "repro", "train")
    return ws


def test_self_reward_pairs_rank_by_the_stand_in_judge(self_reward):
    pairs = pl.read_parquet(self_reward / "data/round/filter/pairs.parquet")
    assert pairs.height and (pairs["chosen_reward"] > pairs["rejected_reward"]).all()
    assert set(pairs["rule"]) == {"judge_best_vs_worst"}
