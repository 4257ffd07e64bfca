"""GRPO on the round's stored groups (`train.grpo.rollouts: round`): generate records what the
trainer needs, the trainer replays the stored groups and samples nothing, its importance ratio
is against the recorded log-probabilities, groups with equal rewards never reach it, and a killed
train resumes to the identical model.

Run: `pytest tests/test_grpo_round.py`
"""

import os
import subprocess
import sys

import polars as pl
import pytest
import torch

from sharpen.backends.hf import HFBackend
from sharpen.io import hash_path
from sharpen.objectives.grpo import train_grpo_round
from sharpen.objectives.trainer import TrainerSettings
from sharpen.params import GRPOParams, ParamsError
from sharpen.config import load_params
from sharpen.sampling import sample_frame
from tests.test_dpo import _params_file

PROMPTS = ["1+1=", "12+34=", "5+5=", "123+456="]  # different lengths: generation pads them on the left


@pytest.fixture(scope="module")
def groups(tiny_model_dir):
    """4 problems x 4 samples with recorded tokens and log-probabilities; rewards 0, 1, 0, 1 per group."""
    problems = pl.DataFrame({"problem_id": [f"p{i}" for i in range(4)], "prompt": PROMPTS})
    backend = HFBackend(tiny_model_dir, batch_size=8, chat="never")
    completions = backend.generate(PROMPTS, n=4, temperature=1.0, top_p=1.0, max_new_tokens=5, seed=1, logprobs=True)
    samples = sample_frame(problems, completions, round_=1, policy_hash="x", temperature=1.0)
    return samples.with_columns(reward=(pl.col("sample_idx") % 2).cast(pl.Float64))


def train(groups, model_dir, out, **kw):
    grpo = GRPOParams(rollouts="round", num_generations=4, steps=kw.pop("steps", 2), epsilon=0.2, epsilon_high=0.28)
    settings = TrainerSettings(lr=kw.pop("lr", 1e-3), lr_scheduler="constant", warmup_ratio=0.0, batch_size=8, seed=0,
                               chat="never", **kw)
    return train_grpo_round(groups, model_dir, out, settings, grpo=grpo)


def test_generate_records_the_sampling_policys_logprobs_whatever_the_padding(groups, tiny_model_dir):
    backend = HFBackend(tiny_model_dir, batch_size=8, chat="never")
    for row in groups.iter_rows(named=True):
        prompt = backend.tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        with torch.no_grad():  # the sequence alone, unpadded
            logits = backend.model(torch.tensor([prompt + row["token_ids"]])).logits[0, len(prompt) - 1 : -1]
        expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(row["token_ids"])[:, None]).squeeze(-1)
        assert row["logprobs"] == pytest.approx(expected.tolist(), abs=1e-4)
        assert len(row["token_ids"]) == row["num_tokens"]


def test_round_rollouts_replay_the_stored_groups_and_sample_nothing(groups, tiny_model_dir, tmp_path, monkeypatch):
    from trl import GRPOTrainer

    def no_sampling(*a, **k):
        raise AssertionError("the trainer sampled")

    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", no_sampling)
    log, rollouts = train(groups, tiny_model_dir, tmp_path / "out")
    stored = set(zip(groups["problem_id"], groups["completion"], groups["reward"], strict=True))
    assert len(log) == 2 and len(rollouts) == 16
    assert {(r["problem_id"], r["completion"], r["reward"]) for r in rollouts} <= stored


def test_the_importance_ratio_is_against_the_recorded_logprobs(groups, tiny_model_dir, tmp_path):
    log_true, _ = train(groups, tiny_model_dir, tmp_path / "a", steps=1, lr=1e-9)
    shifted = groups.with_columns(pl.col("logprobs").list.eval(pl.element() - 1.0))  # pi_sample e times smaller
    log_shifted, _ = train(shifted, tiny_model_dir, tmp_path / "b", steps=1, lr=1e-9)
    assert log_true[0]["clip_ratio/region_mean"] == 0.0  # the policy that sampled: ratio 1
    assert log_shifted[0]["clip_ratio/region_mean"] > 0.0  # ratio e > 1 + epsilon_high: clipped


@pytest.mark.parametrize(("change", "key"), [
    ({"generate": {"k": 8, "logprobs": True}, "train": {"grpo": {"num_generations": 4}}}, "train.grpo.num_generations"),
    ({"generate": {"k": 4}, "train": {"grpo": {"num_generations": 4}}}, "generate.logprobs"),
    ({"generate": {"k": 4, "logprobs": True}, "train": {"init": "base", "grpo": {"num_generations": 4}}}, "train.init"),
    ({"generate": {"k": 4, "logprobs": True, "temperature": 0.0}, "train": {"grpo": {"num_generations": 4}}},
     "generate.temperature"),
])
def test_round_rollouts_refuse_what_they_cannot_train_on(tmp_path, change, key):
    train_section = {"objective": "grpo", "init": "previous", "batch_size": 8} | change["train"]
    train_section["grpo"] = {"rollouts": "round"} | train_section["grpo"]
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        load_params(_params_file(tmp_path, {"generate": change["generate"], "train": train_section}))


def test_groups_with_equal_rewards_never_reach_the_trainer(groups):
    from sharpen.objectives.table import stored_groups

    flat = groups.with_columns(reward=pl.when(pl.col("problem_id") == "p1").then(1.0).otherwise(pl.col("reward")))
    problems = groups.select("problem_id").unique()
    verdicts = flat.select("problem_id", "sample_idx", "reward")
    kept, dropped = stored_groups(problems, groups.drop("reward"), verdicts, "samples.parquet")
    assert dropped == 1 and "p1" not in set(kept["problem_id"]) and kept["problem_id"].n_unique() == 3


def test_samples_without_logprobs_are_refused_naming_the_setting(groups):
    from sharpen.io import ArtifactError
    from sharpen.objectives.table import stored_groups

    plain = groups.drop("reward", "token_ids", "logprobs")
    with pytest.raises(ArtifactError, match="generate.logprobs"):
        stored_groups(plain.select("problem_id").unique(), plain, groups.select("problem_id", "sample_idx", "reward"), "s")


RESUME = """
import sys, polars as pl
from pathlib import Path
from tests.test_grpo_round import train
groups = pl.read_parquet(sys.argv[1])
train(groups, Path(sys.argv[2]), Path(sys.argv[3]), steps=6, checkpoints=Path(sys.argv[4]), checkpoint_steps=2)
"""


def test_a_killed_round_grpo_train_resumes_to_the_same_model(groups, tiny_model_dir, tmp_path):
    groups.write_parquet(tmp_path / "groups.parquet")

    def run(out: str, checkpoints: str, fault: str | None = None) -> subprocess.CompletedProcess:
        env = os.environ | ({"SHARPEN_FAULT": fault} if fault else {})
        return subprocess.run([sys.executable, "-c", RESUME, str(tmp_path / "groups.parquet"), str(tiny_model_dir),
                               str(tmp_path / out), str(tmp_path / checkpoints)], env=env, capture_output=True,
                              text=True, start_new_session=True)

    assert run("whole", "ck-whole").returncode == 0
    assert run("resumed", "ck", "train-step@3").returncode == -9
    again = run("resumed", "ck")
    assert again.returncode == 0 and "resuming from checkpoint-2" in again.stdout
    assert hash_path(tmp_path / "resumed") == hash_path(tmp_path / "whole")


@pytest.mark.parametrize(("weight", "expected"), [(1.0, [2.0, -1.0, 0.0]), (0.0, [2.0, 0.0, 0.0]), (0.25, [2.0, -0.25, 0.0])])
def test_negative_weight_scales_only_the_advantages_below_the_group_mean(weight, expected):
    import torch

    from sharpen.objectives.grpo import _negatives_weighted

    class Scored:
        def _generate_and_score_completions(self, inputs):
            return {"advantages": torch.tensor([2.0, -1.0, 0.0]), "completion_ids": inputs}

    out = _negatives_weighted(Scored, weight)()._generate_and_score_completions("ids")
    assert out["advantages"].tolist() == expected and out["completion_ids"] == "ids"
