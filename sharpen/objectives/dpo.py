"""Direct preference optimisation on the filter's pairs, with TRL's DPOTrainer.

Rows are (prompt, chosen, rejected), the prompt rendered as generation renders it. The loss is
DPO's sigmoid loss with temperature `beta`, plus `nll_weight` times the NLL of the chosen
completion (TRL's `sft` loss term: iterative reasoning preference optimisation; 0 = plain DPO).
The reference is the init policy (TRL loads a frozen copy; with LoRA it is the adapter disabled,
i.e. the base model). Full weights or a LoRA adapter, resumable from the last checkpoint
(sharpen/objectives/trainer.py).

Run: `python -m stages.train ...` with `train.objective: dpo` (DVC stage `train`).
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from sharpen.objectives.trainer import Policy, TrainerSettings, train_resumable

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def train_dpo(pairs: pl.DataFrame, init_dir: Path, out_dir: Path, settings: TrainerSettings, *, beta: float,
              nll_weight: float, max_length: int) -> list[dict]:
    """Train the policy in `init_dir` on `PreferencePair` rows; save to `out_dir`; return the log
    (per step: loss, rewards/margins, rewards/accuracies, ...)."""

    def build(policy: Policy, args: dict):
        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer

        from sharpen.prompting import render

        tokenizer = policy.tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        dataset = Dataset.from_dict({
            "prompt": render(tokenizer, pairs["prompt"].to_list(), settings.chat),
            "chosen": pairs["chosen"].to_list(),
            "rejected": pairs["rejected"].to_list(),
        })
        losses, weights = (["sigmoid", "sft"], [1.0, nll_weight]) if nll_weight > 0 else (["sigmoid"], None)
        config = DPOConfig(**args, beta=beta, loss_type=losses, loss_weights=weights, num_train_epochs=settings.epochs,
                           max_length=max_length)
        return DPOTrainer(model=policy.model, args=config, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=policy.peft_config)

    return train_resumable(init_dir, out_dir, settings, build, name="dpo")
