"""Online GRPO with TRL's GRPOTrainer, the round's own verifier as the reward.

The trainer samples `num_generations` completions per prompt from the policy being trained, for
`steps` optimizer steps, on the problems the filter kept (its problem rules, e.g. `group_band`,
act as the prefilter of learnable problems, as in MASA / ReST-GRPO). The reward function is the
project's verifier (`sharpen.verifiers.get_verifier`, with the task's answer form and the raw
problem prompt, so a restated question earns nothing here too): one verifier, never a second copy
of its logic. A reward that is not finite stops training with an error naming the verifier.

Every generation the trainer scored is recorded (`rollouts`: step, problem, completion, reward,
and the group advantage reward − group mean, divided by the group std when `scale_rewards` is
`group`), so lineage, `sharpen diff` and the report see what RL trained on. Groups whose rewards
are all equal teach nothing (zero advantage); their count is returned for the metrics.

Not here yet: `rollouts: round` (training on the generate stage's stored groups with an explicit
importance ratio) and majority-vote rewards (TTRL's RL step).

Run: `python -m stages.train ...` with `train.objective: grpo` (DVC stage `train`).
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
from pathlib import Path

import polars as pl

from sharpen.objectives.sft import _fault_point_callback, last_complete_checkpoint, load_policy, trainer_args

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def verifier_reward(verifier_name: str, answer_form: str, num_generations: int, scale: str, record: list[dict]):
    """A TRL reward function scoring with the project's verifier; appends what it scored to `record`."""
    from sharpen.verifiers import get_verifier

    verifier = get_verifier(verifier_name, answer_form)

    def reward(prompts, completions, reference, problem_id, question, trainer_state=None, **_) -> list[float]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        results = verifier(texts, list(reference), prompts=list(question))
        rewards = [float(r.reward) for r in results]
        bad = [i for i, r in enumerate(rewards) if not math.isfinite(r)]
        if bad:
            raise ValueError(f"verify.verifier: {verifier_name} returned a non-finite reward ({rewards[bad[0]]}) for "
                             f"problem {problem_id[bad[0]]!r}; refusing to train on it")
        step = trainer_state.global_step if trainer_state is not None else 0
        for start in range(0, len(rewards), num_generations):
            group = rewards[start : start + num_generations]
            mean, std = statistics.fmean(group), statistics.pstdev(group)
            for i, r in enumerate(group, start=start):
                advantage = r - mean
                if scale == "group":
                    advantage = advantage / std if std > 0 else 0.0
                record.append({"step": step, "problem_id": problem_id[i], "group": start // num_generations,
                               "completion": texts[i], "reward": r, "advantage": advantage})
        return rewards

    reward.__name__ = f"verifier_{verifier_name}"
    return reward


def train_grpo(
    problems: pl.DataFrame, references: list[str | None], init_dir: Path, out_dir: Path, *, grpo, verifier: str,
    answer_form: str, lr: float, lr_scheduler: str, warmup_ratio: float, batch_size: int, seed: int,
    chat: str = "auto", lora=None, base_dir: Path | None = None, checkpoints: Path | None = None,
    checkpoint_steps: int = 0,
) -> tuple[list[dict], list[dict]]:
    """Train the policy in `init_dir` by GRPO on `problems` (prompt, problem_id); save to `out_dir`.
    Returns (the trainer's log, the scored rollouts)."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from sharpen.prompting import render

    torch.manual_seed(seed)
    model, tokenizer, peft_config = load_policy(init_dir, base_dir, lora)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    questions, ids = problems["prompt"].to_list(), problems["problem_id"].to_list()
    per_batch = batch_size // grpo.num_generations
    if 0 < len(questions) < per_batch:  # fewer problems than one batch holds: more groups of the same ones
        times = -(-per_batch // len(questions))
        questions, ids, references = questions * times, ids * times, list(references) * times
    dataset = Dataset.from_dict({"prompt": render(tokenizer, questions, chat), "question": questions,
                                 "reference": list(references), "problem_id": ids})
    record: list[dict] = []
    resumable = checkpoints is not None and checkpoint_steps > 0
    with tempfile.TemporaryDirectory(prefix="sharpen-grpo-") as scratch:
        resume = last_complete_checkpoint(checkpoints) if resumable else None
        if resume:
            print(f"train: resuming from {resume.name} ({checkpoints})")
        config = GRPOConfig(
            **trainer_args(str(checkpoints) if resumable else scratch, resumable=resumable, checkpoint_steps=checkpoint_steps,
                           lr=lr, lr_scheduler=lr_scheduler, warmup_ratio=warmup_ratio, batch_size=batch_size, seed=seed),
            max_steps=grpo.steps,
            num_generations=grpo.num_generations,
            max_completion_length=grpo.max_completion_length,
            temperature=grpo.temperature,
            loss_type=grpo.loss_type,
            beta=grpo.beta,
            epsilon=grpo.epsilon,
            epsilon_high=grpo.epsilon_high,
            scale_rewards=grpo.scale_rewards,
            mask_truncated_completions=grpo.mask_truncated_completions,
            activation_checkpointing=torch.cuda.is_available(),  # (gradient_checkpointing, renamed)
        )
        reward = verifier_reward(verifier, answer_form, grpo.num_generations, grpo.scale_rewards, record)
        trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=dataset,
                              processing_class=tokenizer, peft_config=peft_config, callbacks=[_fault_point_callback()])
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return [row for row in trainer.state.log_history if "loss" in row], record
