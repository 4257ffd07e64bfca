"""The resumable trainer every objective runs: load the policy, build TRL's trainer on the shared
settings, train from the last complete checkpoint, save the policy.

Full fine-tuning loads the init checkpoint (`train.init`: the base model, or the current policy)
and saves a full model. With `train.lora`, the policy is a peft LoRA adapter over the base
model: a fresh adapter (init base, or round 1) or the current policy's adapter trained on
(init previous); only the adapter is saved, its config naming the base directory.

With `checkpoint_steps`, the Trainer saves a resumable checkpoint (weights, optimizer, scheduler,
RNG states) every N optimizer steps into `checkpoints`, keeping the last one; a rerun resumes from
the latest complete one and ends where an uninterrupted run ends. The Trainer writes a checkpoint's
`trainer_state.json` last, so a checkpoint without a readable one was cut short and is removed.

Run: `python -m stages.train ...` (DVC stage `train`): sft.py, dpo.py and grpo.py call `train_resumable`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from sharpen.objectives.processes import distributed_args, is_main_process, world
from sharpen.tracking import train_reporting

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class TrainerSettings:
    """What every objective's trainer shares: the schedule, the batch, the seed, the prompt rendering,
    full weights or a LoRA adapter, and the checkpoints."""

    lr: float
    lr_scheduler: str
    warmup_ratio: float
    batch_size: int  # the global batch (train.processes split it)
    seed: int
    epochs: float = 1.0  # sft and dpo; grpo counts optimizer steps (train.grpo.steps)
    chat: str = "auto"  # task.chat: how prompts are rendered (sharpen.prompting)
    lora: Any = None  # LoraParams: train an adapter over base_dir; None: full weights
    base_dir: Path | None = None
    checkpoints: Path | None = None  # with checkpoint_steps > 0: resumable (checkpoints_for)
    checkpoint_steps: int = 0

    @classmethod
    def from_train(cls, train, *, chat: str, base_dir: Path, checkpoints: Path) -> TrainerSettings:
        """The settings of `train` (TrainParams), with the task's chat rendering, the LoRA base and the checkpoints."""
        return cls(lr=train.lr, lr_scheduler=train.lr_scheduler, warmup_ratio=train.warmup_ratio,
                   batch_size=train.batch_size, seed=train.seed, epochs=train.epochs, chat=chat, lora=train.lora,
                   base_dir=base_dir, checkpoints=checkpoints, checkpoint_steps=train.checkpoint_steps)

    @property
    def resumable(self) -> bool:
        return self.checkpoints is not None and self.checkpoint_steps > 0


class Policy(NamedTuple):
    """The policy to train: the model, its tokenizer, and the LoRA config of a new adapter (else None)."""

    model: Any
    tokenizer: Any
    peft_config: Any


def train_resumable(init_dir: Path, out_dir: Path, settings: TrainerSettings, build: Callable[[Policy, dict], Any], *,
                    name: str) -> list[dict]:
    """Load the policy in `init_dir`, `build(policy, trainer_args)` its objective's trainer, train it (from the
    last complete checkpoint, if any), save the policy to `out_dir`; return the trainer's per-step log."""
    import torch

    torch.manual_seed(settings.seed)
    policy = load_policy(init_dir, settings.base_dir, settings.lora)
    with tempfile.TemporaryDirectory(prefix=f"sharpen-{name}-") as scratch:
        resume = last_complete_checkpoint(settings.checkpoints) if settings.resumable else None
        if resume:
            print(f"train: resuming from {resume.name} ({settings.checkpoints})")
        _quiet_dataset_bars()  # the trainers' dataset preparation (tokenize, truncate, ...) draws a bar per step
        args = trainer_args(str(settings.checkpoints) if settings.resumable else scratch, settings)
        args |= train_reporting(name)  # report_to follows params.yaml `tracking` (sharpen/tracking.py)
        trainer = build(policy, args)
        attach_stage_callbacks(trainer, name)
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.model.save_pretrained(out_dir)
    policy.tokenizer.save_pretrained(out_dir)
    from sharpen.models import canonical_adapter_config

    canonical_adapter_config(out_dir)  # the same adapter, the same bytes, whatever the process's hash seed
    return [row for row in trainer.state.log_history if "loss" in row]


def load_policy(init_dir: Path, base_dir: Path | None, lora) -> Policy:
    """The full init policy (an adapter policy merged), or the base with the init adapter made trainable /
    a new adapter's config (`lora`)."""
    from sharpen.models import load_causal_lm

    if lora is None:
        model, tokenizer = load_causal_lm(init_dir)
        return Policy(model, tokenizer, None)
    return Policy(*_lora_model(init_dir, base_dir, lora))


def trainer_args(output_dir: str, settings: TrainerSettings) -> dict:
    """The TrainingArguments every objective shares: schedule, logging each step, resumable checkpoints
    (the last one kept), seeds, and the device (CPU without bf16 when there is no GPU)."""
    import torch

    # TRL 1.16 still uses transformers' pre-rename checkpointing API: its configs warn when built,
    # its trainers when they run. The warnings are theirs, not the user's; every objective builds its
    # config from these args, so the filter is in place before either.
    warnings.filterwarnings("ignore", message=r".*(gradient|activation)_checkpointing.*deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)

    s = settings
    return dict(
        output_dir=output_dir, learning_rate=s.lr, lr_scheduler_type=s.lr_scheduler,
        warmup_steps=s.warmup_ratio,  # transformers 5: a float below 1 is a fraction of the steps
        per_device_train_batch_size=s.batch_size // world()[1],  # batch_size is the global batch (train.processes)
        logging_steps=1,
        logging_nan_inf_filter=False,  # a NaN/inf loss is logged as it is, so check_finite_loss stops the stage
        save_strategy="steps" if s.resumable else "no", save_steps=s.checkpoint_steps or 500, save_total_limit=1,
        report_to="none", seed=s.seed, data_seed=s.seed, dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(), bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        **distributed_args(),
    )  # fmt: skip


def checkpoints_for(out: Path, fingerprint: str) -> Path:
    """`<out>/.checkpoints/<fingerprint>`, with checkpoints made from other inputs deleted (never resumed)."""
    import shutil

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


# what a step line shows beside the loss, where the trainer logs it: our label -> the trainer's log key
STEP_VALUES = {"reward mean": "reward", "reward margin": "rewards/margins"}


def step_line(name: str, step: int, max_steps: int, logs: dict) -> str:
    """One labelled line for a logged step: `train (grpo): step 3/20, loss 0.1234, reward mean 0.500`."""
    parts = [f"step {step}/{max_steps}", f"loss {logs['loss']:.4f}"]
    parts += [f"{label} {logs[key]:.3f}" for label, key in STEP_VALUES.items() if isinstance(logs.get(key), (int, float))]
    return f"train ({name}): " + ", ".join(parts)


def _quiet_dataset_bars() -> None:
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass


def attach_stage_callbacks(trainer, name: str = "train") -> None:
    """What every objective's trainer gets: the `train-step` fault point (sharpen.faults) after each
    optimizer step, a stop with a clear error when the loss goes NaN or infinite (`check_finite_loss`),
    and a bar labelled with the objective over the optimizer steps, with a labelled line (`step_line`:
    step, loss and, for GRPO, the reward mean) on the first step, every 1/20 of the run and the last,
    instead of the trainer's unlabelled bar and log dicts (every step's values go to loss.csv)."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from sharpen import faults

    class FaultPoint(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            faults.point("train-step")

    class FiniteLoss(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            check_finite_loss(logs, state.global_step, args.learning_rate)

    class StepLines(TrainerCallback):
        bar = None

        def on_train_begin(self, args, state, control, **kwargs):
            from sharpen.stage import progress

            if state.is_world_process_zero:
                self.bar = progress(state.max_steps, f"train ({name})", "step")
                self.bar.update(state.global_step)  # resumed from a checkpoint

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):
            step, last = state.global_step, state.max_steps
            if self.bar is None or "loss" not in (logs or {}):
                return
            if step == 1 or step == last or step % max(1, last // 20) == 0:
                self.bar.write(step_line(name, step, last, logs), file=sys.stdout)
                sys.stdout.flush()

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()

    trainer.add_callback(FaultPoint())
    trainer.add_callback(FiniteLoss())
    trainer.remove_callback(ProgressCallback)  # its bar has no label, and it prints every step's log dict
    trainer.remove_callback(PrinterCallback)  # the same dicts, where the trainer draws no bar
    trainer.add_callback(StepLines())


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
