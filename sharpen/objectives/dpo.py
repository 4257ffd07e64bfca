"""Direct preference optimisation on the filter's pairs, with TRL's DPOTrainer.

Rows are (prompt, chosen, rejected), the prompt rendered as generation renders it. The loss is
DPO's sigmoid loss with temperature `beta`, plus `nll_weight` times the NLL of the chosen
completion (TRL's `sft` loss term: iterative reasoning preference optimisation; 0 = plain DPO).
The reference is the init policy (TRL loads a frozen copy; with LoRA it is the adapter disabled,
i.e. the base model). Full weights or a LoRA adapter, resumable from the last checkpoint, as SFT.

Run: `python -m stages.train ...` with `train.objective: dpo` (DVC stage `train`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polars as pl

from sharpen.objectives.sft import attach_stage_callbacks, last_complete_checkpoint, load_policy, trainer_args

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def train_dpo(
    pairs: pl.DataFrame, init_dir: Path, out_dir: Path, *, beta: float, nll_weight: float, lr: float,
    lr_scheduler: str, warmup_ratio: float, epochs: float, batch_size: int, max_length: int, seed: int,
    chat: str = "auto", lora=None, base_dir: Path | None = None, checkpoints: Path | None = None,
    checkpoint_steps: int = 0,
) -> list[dict]:
    """Train the policy in `init_dir` on `PreferencePair` rows; save to `out_dir`; return the log
    (per step: loss, rewards/margins, rewards/accuracies, ...)."""
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from sharpen.prompting import render

    torch.manual_seed(seed)
    model, tokenizer, peft_config = load_policy(init_dir, base_dir, lora)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = Dataset.from_dict({
        "prompt": render(tokenizer, pairs["prompt"].to_list(), chat),
        "chosen": pairs["chosen"].to_list(),
        "rejected": pairs["rejected"].to_list(),
    })
    resumable = checkpoints is not None and checkpoint_steps > 0
    losses, weights = (["sigmoid", "sft"], [1.0, nll_weight]) if nll_weight > 0 else (["sigmoid"], None)
    with tempfile.TemporaryDirectory(prefix="sharpen-dpo-") as scratch:
        resume = last_complete_checkpoint(checkpoints) if resumable else None
        if resume:
            print(f"train: resuming from {resume.name} ({checkpoints})")
        config = DPOConfig(
            **trainer_args(str(checkpoints) if resumable else scratch, resumable=resumable, checkpoint_steps=checkpoint_steps,
                           lr=lr, lr_scheduler=lr_scheduler, warmup_ratio=warmup_ratio, batch_size=batch_size, seed=seed),
            beta=beta, loss_type=losses, loss_weights=weights, num_train_epochs=epochs, max_length=max_length,
        )
        trainer = DPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=peft_config)
        attach_stage_callbacks(trainer)
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return [row for row in trainer.state.log_history if "loss" in row]
