"""Supervised fine-tuning on kept samples with TRL's SFTTrainer, loss on the completion only.

The data is TRL's prompt-completion format, the prompt rendered as generation renders it (the
chat template, if the model has one: sharpen.prompting); SFTTrainer appends EOS to each
completion and masks the prompt out of the loss.

Full fine-tuning loads the init checkpoint (`train.init`: the base model, or the current policy)
and saves a full model. With `train.lora`, the policy is a peft LoRA adapter over the base
model: a fresh adapter (init base, or round 1) or the current policy's adapter trained on
(init previous); only the adapter is saved, its config naming the base directory.

With `checkpoint_steps`, the Trainer saves a resumable checkpoint (weights, optimizer, scheduler,
RNG states) every N optimizer steps into `checkpoints`, keeping the last one; a rerun resumes from
the latest complete one and ends where an uninterrupted run ends. The Trainer writes a checkpoint's
`trainer_state.json` last, so a checkpoint without a readable one was cut short and is removed.

Run: `python -m stages.train ...` (DVC stage `train`).
"""

from __future__ import annotations

import os
import tempfile
import warnings
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
    chat: str = "auto",
    lora=None,
    base_dir: Path | None = None,
    checkpoints: Path | None = None,
    checkpoint_steps: int = 0,
) -> list[dict]:
    """Fine-tune the policy in `init_dir` on (prompt, completion) rows; save to `out_dir`; return the log.

    `lora` (LoraParams) trains an adapter over `base_dir` instead of the full model. With
    `checkpoints` and `checkpoint_steps`, training is resumable (see the module docstring).
    """
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from sharpen.prompting import render

    torch.manual_seed(seed)
    model, tokenizer, peft_config = load_policy(init_dir, base_dir, lora)
    prompts = render(tokenizer, examples["prompt"].to_list(), chat)
    dataset = Dataset.from_dict({"prompt": prompts, "completion": examples["completion"].to_list()})
    resumable = checkpoints is not None and checkpoint_steps > 0
    with tempfile.TemporaryDirectory(prefix="sharpen-sft-") as scratch:
        resume = last_complete_checkpoint(checkpoints) if resumable else None
        if resume:
            print(f"train: resuming from {resume.name} ({checkpoints})")
        config = SFTConfig(
            **trainer_args(str(checkpoints) if resumable else scratch, resumable=resumable, checkpoint_steps=checkpoint_steps,
                           lr=lr, lr_scheduler=lr_scheduler, warmup_ratio=warmup_ratio, batch_size=batch_size, seed=seed),
            num_train_epochs=epochs,
            max_length=max_length,
            completion_only_loss=True,
            packing=False,
            disable_tqdm=False,
        )
        trainer = SFTTrainer(
            model=model, args=config, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config,
        )
        attach_stage_callbacks(trainer)
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return [row for row in trainer.state.log_history if "loss" in row]


def load_policy(init_dir: Path, base_dir: Path | None, lora):
    """(model, tokenizer, peft_config) to train: the full init policy (an adapter policy merged), or the
    base with the init adapter made trainable / a new adapter's config (`lora`)."""
    from sharpen.models import load_causal_lm

    if lora is None:
        model, tokenizer = load_causal_lm(init_dir)
        peft_config = None
    else:
        model, tokenizer, peft_config = _lora_model(init_dir, base_dir, lora)
    return model, tokenizer, peft_config


def trainer_args(output_dir: str, *, resumable: bool, checkpoint_steps: int, lr: float, lr_scheduler: str,
                 warmup_ratio: float, batch_size: int, seed: int) -> dict:
    """The TrainingArguments every objective shares: schedule, logging each step, resumable checkpoints
    (the last one kept), seeds, and the device (CPU without bf16 when there is no GPU)."""
    import torch

    # TRL 1.16 still uses transformers' pre-rename checkpointing API: its configs warn when built,
    # its trainers when they run. The warnings are theirs, not the user's; every objective builds its
    # config from these args, so the filter is in place before either.
    warnings.filterwarnings("ignore", message=r".*(gradient|activation)_checkpointing.*deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)

    from sharpen.objectives.processes import distributed_args, world

    return dict(
        output_dir=output_dir, learning_rate=lr, lr_scheduler_type=lr_scheduler,
        warmup_steps=warmup_ratio,  # transformers 5: a float below 1 is a fraction of the steps
        per_device_train_batch_size=batch_size // world()[1],  # batch_size is the global batch (train.processes)
        logging_steps=1,
        logging_nan_inf_filter=False,  # a NaN/inf loss is logged as it is, so check_finite_loss stops the stage
        save_strategy="steps" if resumable else "no", save_steps=checkpoint_steps or 500, save_total_limit=1,
        report_to="none", seed=seed, data_seed=seed, dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(), bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        **distributed_args(),
    )  # fmt: skip


def checkpoints_for(out: Path, fingerprint: str) -> Path:
    """`<out>/.checkpoints/<fingerprint>`, with checkpoints made from other inputs deleted (never resumed)."""
    import shutil

    from sharpen.objectives.processes import is_main_process

    root = out / ".checkpoints"
    if root.exists() and is_main_process():  # under DDP, process 0 alone tidies
        for stale in root.iterdir():
            if stale.name != fingerprint:
                shutil.rmtree(stale)
    return root / fingerprint


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The latest `checkpoint-N` in `folder` whose trainer state reads; later, unfinished ones are removed."""
    import json
    import shutil

    if not folder.is_dir():
        return None
    steps = sorted((int(p.name.split("-")[1]), p) for p in folder.glob("checkpoint-*") if p.name.split("-")[1].isdigit())
    for _, path in reversed(steps):
        try:
            json.loads((path / "trainer_state.json").read_text())
            return path
        except (OSError, ValueError):
            shutil.rmtree(path, ignore_errors=True)  # killed while it was being saved
    return None


def check_finite_loss(logs: dict | None, step: int, lr: float) -> None:
    """Raise TrainingDiverged if a logged loss is NaN or infinite."""
    import math

    from sharpen.stage import TrainingDiverged

    for key in ("loss", "train_loss"):
        value = (logs or {}).get(key)
        if isinstance(value, (int, float)) and not math.isfinite(value):
            raise TrainingDiverged(
                f"train: the training loss became {value} at step {step} (train.lr {lr:g}); the model is not written "
                "and the previous one is kept. Lower train.lr (or the warm-up: train.warmup_ratio) and rerun `dvc repro`"
            )


def attach_stage_callbacks(trainer) -> None:
    """What every objective's trainer gets: the `train-step` fault point (sharpen.faults) after each
    optimizer step, a stop with a clear error when the loss goes NaN or infinite (`check_finite_loss`),
    and a progress bar that does not print every step's log dict (the per-step values go to loss.csv)."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import ProgressCallback

    from sharpen import faults

    class FaultPoint(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            faults.point("train-step")

    class FiniteLoss(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            check_finite_loss(logs, state.global_step, args.learning_rate)

    class QuietProgress(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass

    trainer.add_callback(FaultPoint())
    trainer.add_callback(FiniteLoss())
    if any(isinstance(c, ProgressCallback) for c in trainer.callback_handler.callbacks):
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(QuietProgress())


def _lora_model(init_dir: Path, base_dir: Path | None, lora):
    """(model, tokenizer, peft_config): the base with the init adapter made trainable, or a new one's config."""
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sharpen.models import ModelError, is_adapter

    if base_dir is None:
        raise ValueError("train_sft: LoRA needs base_dir")
    tokenizer = AutoTokenizer.from_pretrained(str(init_dir))
    base = AutoModelForCausalLM.from_pretrained(str(base_dir))
    if is_adapter(init_dir):
        return PeftModel.from_pretrained(base, str(init_dir), is_trainable=True), tokenizer, None
    from sharpen.io import hash_path

    if Path(init_dir).resolve() != Path(base_dir).resolve() and hash_path(init_dir) != hash_path(base_dir):
        raise ModelError(
            f"train.lora: the init policy {init_dir} is full weights, not the base; LoRA adapters sit on "
            f"{base_dir}, so start LoRA from `train.init: base` or a fresh loop"
        )
    targets = lora.target_modules if isinstance(lora.target_modules, str) else list(lora.target_modules)
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
                        task_type="CAUSAL_LM")
    return base, tokenizer, config
