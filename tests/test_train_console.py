"""The train stage's console while it trains: a bar labelled with the objective and labelled step lines
(step, loss, and GRPO's reward mean) as it goes, without the datasets' preparation bars
(sharpen/objectives/trainer.py: attach_stage_callbacks).

Run: `pytest tests/test_train_console.py`
"""

import re

import polars as pl

from sharpen.objectives.trainer import TrainerSettings

SETTINGS = TrainerSettings(lr=1e-3, lr_scheduler="constant", warmup_ratio=0.0, batch_size=2, seed=0, chat="never")


def _sft(model_dir, out, capfd) -> tuple[str, str]:
    from sharpen.objectives.sft import train_sft

    examples = pl.DataFrame({"prompt": ["1+1=", "2+2=", "3+3=", "4+4=", "5+5=", "6+6="],
                             "completion": ["2", "4", "6", "8", "10", "12"]})
    train_sft(examples, model_dir, out, SETTINGS, max_length=16)
    return capfd.readouterr()


def test_sft_prints_a_labelled_line_with_the_loss_at_each_step(tiny_model_dir, tmp_path, capfd):
    out, _ = _sft(tiny_model_dir, tmp_path / "out", capfd)
    lines = re.findall(r"^train \(sft\): step (\d+)/3, loss \d+\.\d{4}$", out, re.M)
    assert lines == ["1", "2", "3"]  # as it goes, not one summary at the end


def test_the_training_bar_is_labelled_and_the_dataset_preparation_draws_none(tiny_model_dir, tmp_path, capfd):
    _, err = _sft(tiny_model_dir, tmp_path / "out", capfd)
    assert "train (sft):" in err
    assert "train dataset" not in err  # TRL's "Tokenizing train dataset", "Truncating train dataset", ...


def test_grpo_step_lines_carry_the_reward_mean(tiny_model_dir, tmp_path, capfd):
    from sharpen.objectives.grpo import train_grpo
    from sharpen.params import GRPOParams

    problems = pl.DataFrame({"problem_id": ["p0", "p1"], "prompt": ["1+1=", "2+2="]})
    settings = TrainerSettings(lr=1e-3, lr_scheduler="constant", warmup_ratio=0.0, batch_size=4, seed=0, chat="never")
    train_grpo(problems, ["2", "4"], tiny_model_dir, tmp_path / "out", settings,
               grpo=GRPOParams(steps=2, num_generations=2, max_completion_length=2), verifier="exact_integer",
               answer_form="auto")
    out, _ = capfd.readouterr()
    lines = re.findall(r"^train \(grpo\): step (\d+)/2, loss -?\d+\.\d{4}, reward mean \d\.\d{3}$", out, re.M)
    assert lines == ["1", "2"]
