"""Supervised fine-tuning on kept samples with TRL's SFTTrainer, loss on the completion only.

The data is TRL's prompt-completion format, the prompt rendered as generation renders it (the
chat template, if the model has one: sharpen.prompting); SFTTrainer appends EOS to each
completion and masks the prompt out of the loss. Full weights or a LoRA adapter, resumable from
the last checkpoint (sharpen/objectives/trainer.py).

Run: `python -m stages.train ...` (DVC stage `train`).
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from sharpen.objectives.trainer import Policy, TrainerSettings, train_resumable

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def train_sft(examples: pl.DataFrame, init_dir: Path, out_dir: Path, settings: TrainerSettings, *,
              max_length: int) -> list[dict]:
    """Fine-tune the policy in `init_dir` on (prompt, completion) rows; save to `out_dir`; return the log."""

    def build(policy: Policy, args: dict):
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        from sharpen.prompting import render

        prompts = render(policy.tokenizer, examples["prompt"].to_list(), settings.chat)
        dataset = Dataset.from_dict({"prompt": prompts, "completion": examples["completion"].to_list()})
        config = SFTConfig(**args, num_train_epochs=settings.epochs, max_length=max_length, completion_only_loss=True,
                           packing=False, disable_tqdm=False)
        return SFTTrainer(model=policy.model, args=config, train_dataset=dataset, processing_class=policy.tokenizer,
                          peft_config=policy.peft_config)

    return train_resumable(init_dir, out_dir, settings, build, name="sft")
