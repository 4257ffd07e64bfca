"""Supervised fine-tuning on kept samples with TRL's SFTTrainer, loss on the completion only.

The data is TRL's prompt-completion format; SFTTrainer appends EOS to each completion and masks
the prompt out of the loss. The init checkpoint (`train.init`: the base model, or the current
policy) is loaded from its directory; the result is saved as a standard HF model directory.

Run: `python -m stages.train ...` (DVC stage `train`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polars as pl

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def train_sft(
    examples: pl.DataFrame,
    init_dir: Path,
    out_dir: Path,
    *,
    lr: float,
    lr_scheduler: str,
    warmup_ratio: float,
    epochs: float,
    batch_size: int,
    max_length: int,
    seed: int,
) -> list[dict]:
    """Fine-tune the model in `init_dir` on (prompt, completion) rows; save to `out_dir`; return the log."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(init_dir))
    model = AutoModelForCausalLM.from_pretrained(str(init_dir))
    dataset = Dataset.from_dict({"prompt": examples["prompt"].to_list(), "completion": examples["completion"].to_list()})
    with tempfile.TemporaryDirectory(prefix="sharpen-sft-") as scratch:
        config = SFTConfig(
            output_dir=scratch,
            learning_rate=lr,
            lr_scheduler_type=lr_scheduler,
            warmup_steps=warmup_ratio,  # transformers 5: a float below 1 is a fraction of the steps
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            max_length=max_length,
            completion_only_loss=True,
            packing=False,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=seed,
            data_seed=seed,
            dataloader_num_workers=0,
            disable_tqdm=False,
            use_cpu=not torch.cuda.is_available(),
            bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        )
        trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
        trainer.train()
    trainer.model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return [row for row in trainer.state.log_history if "loss" in row]
