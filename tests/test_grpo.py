"""GRPO: the reward is the project's verifier, zero-information groups are counted, and TRL's
GRPOTrainer trains the tiny model online with its scored generations recorded.

Run: `pytest tests/test_grpo.py`
"""

import polars as pl
import pytest

from sharpen.objectives.grpo import train_grpo, verifier_reward
from sharpen.objectives.trainer import TrainerSettings
from sharpen.params import GRPOParams, ParamsError
from sharpen.config import load_params
from tests.test_dpo import _params_file


def test_the_reward_is_the_project_verifier():
    record = []
    reward = verifier_reward("math_equiv", "auto", 2, "group", record)
    got = reward(prompts=["x", "x"], completions=["37 * 6", "222"], reference=["222", "222"], problem_id=["p", "p"],
                 question=["What is 37 * 6?"] * 2)
    assert got == [0.0, 1.0]  # the restated question earns nothing here too
    assert [r["advantage"] for r in record] == [-1.0, 1.0]


def test_a_non_finite_reward_stops_training(monkeypatch):
    from sharpen import verifiers
    from sharpen.verifiers import VerifyResult

    nan = verifiers.VerifierRecord("exact_integer", lambda c, r, prompts=None: [VerifyResult("1", float("nan"), False, "ok")] * len(c))
    monkeypatch.setitem(verifiers.BUILTIN, "exact_integer", nan)
    reward = verifier_reward("exact_integer", "auto", 2, "group", [])
    with pytest.raises(ValueError, match="verify.verifier: exact_integer returned a non-finite reward"):
        reward(prompts=["a"] * 2, completions=["1", "2"], reference=["1", "1"], problem_id=["p", "p"], question=["a"] * 2)


@pytest.mark.parametrize(("change", "key"), [
    ({"grpo": {"num_generations": 3}}, "train.grpo.num_generations"),
    ({"grpo": {"num_generations": 1}}, "train.grpo.num_generations"),
    ({"grpo": {"beta": -1.0}}, "train.grpo.beta"),
    ({"grpo": {"epsilon": 0.3, "epsilon_high": 0.2}}, "train.grpo"),
])
def test_bad_grpo_settings_name_their_key(tmp_path, change, key):
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        load_params(_params_file(tmp_path, {"train": {"objective": "grpo", "batch_size": 32, **change}}))


def test_online_majority_rewards_follow_each_groups_own_vote():
    reward = verifier_reward("exact_integer", "auto", 4, "group", [], labels="majority")
    got = reward(prompts=["x"] * 8, completions=["|5", "|5", "|7", "|5", "|1", "|2", "|2", "|x"],
                 problem_id=["p"] * 4 + ["q"] * 4, question=["a"] * 8)  # no reference is passed: gold is never read
    assert got == [1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]


def test_online_grpo_on_self_judged_rewards_is_refused_clearly(tmp_path):
    with pytest.raises(ParamsError, match="train.grpo.rollouts"):
        load_params(_params_file(tmp_path, {"verify": {"labels": "judge"}, "train": {"objective": "grpo", "batch_size": 32}}))


def test_problems_a_problem_rule_dropped_are_not_trained_on():
    from sharpen.objectives.table import learnable

    problems = pl.DataFrame({"problem_id": ["a", "b", "c"], "prompt": ["1+1="] * 3, "answer": ["2"] * 3, "category": ["x"] * 3})
    decisions = pl.DataFrame({"round": [1] * 4, "problem_id": ["a", "a", "b", "c"], "sample_idx": [0, 1, 0, 0],
                              "keep": [True, False, False, False], "reason": ["kept", "incorrect", "group_band", "incorrect"]})
    assert learnable(problems, decisions)["problem_id"].to_list() == ["a", "c"]


def test_grpo_trains_online_and_records_its_rollouts(tiny_model_dir, tmp_path):
    problems = pl.DataFrame({"problem_id": [f"p{i}" for i in range(4)], "prompt": [f"{i}+{i}=" for i in range(4)]})
    grpo = GRPOParams(steps=2, num_generations=4, max_completion_length=3)
    settings = TrainerSettings(lr=1e-3, lr_scheduler="constant", warmup_ratio=0.0, batch_size=8, seed=0, chat="never")
    log, rollouts = train_grpo(problems, [str(2 * i) for i in range(4)], tiny_model_dir, tmp_path / "out", settings,
                               grpo=grpo, verifier="exact_integer", answer_form="auto")
    assert len(log) == 2 and (tmp_path / "out/model.safetensors").exists()
    assert len(rollouts) == 2 * 8 and {r["step"] for r in rollouts} <= {0, 1, 2}
    assert all(0.0 <= r["reward"] <= 1.0 for r in rollouts)


@pytest.fixture(scope="module")
def grpo_round(tmp_path_factory):
    from tests.workspace import make_workspace, run

    ws = make_workspace(tmp_path_factory.mktemp("grpo"), {
        "recipe": "grpo", "base": {"steps": 300, "hidden_size": 64, "intermediate_size": 128},
        "generate": {"k": 4, "max_new_tokens": 4}, "train": {"batch_size": 8, "grpo": {"steps": 3, "num_generations": 4}},
    })
    run(ws, "dvc", "repro", "train")
    return ws


@pytest.mark.slow  # a full `dvc repro` with a base model good enough to leave mixed groups: ~1 minute
def test_grpo_round_trains_on_the_learnable_problems_and_records_rollouts(grpo_round):
    import json

    m = json.loads((grpo_round / "data/round/train/metrics.json").read_text())
    rollouts = pl.read_parquet(grpo_round / "data/round/train/rollouts.parquet")
    stats = pl.read_parquet(grpo_round / "data/round/filter/stats.parquet")
    learnable = set(stats.filter(pl.col("pass_rate").is_between(0.01, 0.99))["problem_id"])
    assert m["objective"] == "grpo" and m["steps"] == 3 and rollouts.height == m["rollouts"] == 3 * 8
    assert set(rollouts["problem_id"]) <= learnable


def test_training_prints_no_per_step_log_lines_or_third_party_deprecations(tiny_model_dir, tmp_path, capfd):
    import warnings

    problems = pl.DataFrame({"problem_id": ["p0", "p1"], "prompt": ["1+1=", "2+2="]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = TrainerSettings(lr=1e-3, lr_scheduler="constant", warmup_ratio=0.0, batch_size=4, seed=0, chat="never")
        train_grpo(problems, ["2", "4"], tiny_model_dir, tmp_path / "out", settings,
                   grpo=GRPOParams(steps=3, num_generations=2, max_completion_length=2), verifier="exact_integer",
                   answer_form="auto")
    out, err = capfd.readouterr()
    assert "'loss'" not in out + err  # per-step values go to loss.csv, not the terminal
    assert not [w for w in caught if issubclass(w.category, FutureWarning) and "checkpointing" in str(w.message)]
