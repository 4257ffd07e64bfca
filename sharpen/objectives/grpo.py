"""GRPO with TRL's GRPOTrainer: online (the trainer samples, the round's verifier rewards) or on
the round's stored groups (`rollouts: round`).

Online: the trainer samples `num_generations` completions per prompt from the policy being trained, for
`steps` optimizer steps, on the problems the filter kept (its problem rules, e.g. `group_band`,
act as the prefilter of learnable problems, as in MASA / ReST-GRPO). The reward function is the
project's verifier (`sharpen.verifiers.get_verifier`, with the task's answer form and the raw
problem prompt, so a restated question earns nothing here too): one verifier, never a second copy
of its logic. A reward that is not finite stops training with an error naming the verifier.

Every generation the trainer scored is recorded (`rollouts`: step, problem, completion, reward,
and the group advantage reward − group mean, divided by the group std when `scale_rewards` is
`group`), so lineage, `sharpen diff` and the report see what RL trained on. Groups whose rewards
are all equal teach nothing (zero advantage); their count is returned for the metrics.

With `verify.labels: majority` (TTRL's RL step) each online group is rewarded against its own
majority answer (`sharpen.verifiers.majority_labels`, the code the verify stage labels with); the
gold answer is never read.

`rollouts: round`: no sampling inside train. The groups are the generate stage's k samples per
problem, rewarded by the verify stage (gold, majority or judge labels), with the token ids and
per-token log-probabilities generate recorded (`generate.logprobs`). They are replayed through
GRPOTrainer's `rollout_func`, and the recorded log-probabilities are the loss's "old" policy, so
the ratio pi_theta / pi_sample is explicit and clipped to [1 - epsilon, 1 + epsilon_high] from the
first step. Data order is fixed by the seed, so a killed train resumes to the identical model.

`negative_weight` scales the advantage of every sample worse than its group's mean (1: GRPO as
published; 0: only the better samples move the policy, as in RAFT and positive-sample
reinforcement). On the embedded default's tiny model the negative half lowered accuracy: rest-grpo
sets it to 0 (RESULTS.md, the GRPO ablation).

Both modes compute the policy's log-probabilities with positions counted from each sequence's
first real token, as generation does (TRL's default counts them from the left padding).

Run: `python -m stages.train ...` with `train.objective: grpo` (DVC stage `train`).
"""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path

import polars as pl

from sharpen.objectives.trainer import Policy, TrainerSettings, train_resumable

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def without_equal_reward_groups(frame: pl.DataFrame, group: str) -> tuple[pl.DataFrame, int]:
    """(the rows of groups whose rewards differ, how many groups were dropped): a group whose rewards
    are all equal has zero advantage everywhere, so it costs compute and teaches GRPO nothing."""
    spread = frame.group_by(group).agg(pl.col("reward").std(ddof=0).alias("std"))
    flat = spread.filter(pl.col("std") == 0)[group]
    return frame.filter(~pl.col(group).is_in(flat.implode())), flat.len()


def verifier_reward(verifier_name: str, answer_form: str, num_generations: int, scale: str, record: list[dict],
                    labels: str = "gold", control: str = "none", seed: int = 0):
    """A TRL reward function scoring with the project's verifier against the gold answers (or, with
    `labels="majority"`, each group's majority answer); appends what it scored to `record`. With a
    `control` (verify.reward_control), each scored batch is rewarded by the control instead
    (sharpen/verifiers/controls.py), seeded by `seed` and the batch's order."""
    from sharpen.verifiers import get_verifier, majority_labels
    from sharpen.verifiers.controls import controlled

    base = get_verifier(verifier_name, answer_form)
    calls = [0]

    def verifier(texts, references, prompts):
        calls[0] += 1
        return controlled(base(texts, references, prompts=prompts), control, seed + calls[0])

    def reward(prompts, completions, reference, problem_id, question, trainer_state=None, **_) -> list[float]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        results = verifier(texts, list(reference), prompts=list(question))
        rewards = [float(r.reward) for r in results]
        bad = [i for i, r in enumerate(rewards) if not math.isfinite(r)]
        if bad:
            raise ValueError(f"verify.verifier: {verifier_name} returned a non-finite reward ({rewards[bad[0]]}) for "
                             f"problem {problem_id[bad[0]]!r}; refusing to train on it")
        _record(record, trainer_state, problem_id, texts, rewards, num_generations, scale)
        return rewards

    def majority_reward(prompts, completions, problem_id, question, trainer_state=None, **_) -> list[float]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        group = pl.DataFrame({"problem_id": [str(i // num_generations) for i in range(len(texts))],
                              "sample_idx": [i % num_generations for i in range(len(texts))],
                              "completion": texts, "prompt": list(question)})
        labels = dict(majority_labels(group, verifier_name, answer_form).select("problem_id", "label").iter_rows())
        references = [labels[g] for g in group["problem_id"]]
        results = verifier(texts, references, prompts=list(question))
        rewards = [float(r.reward) if ref is not None else 0.0 for r, ref in zip(results, references, strict=True)]
        _record(record, trainer_state, problem_id, texts, rewards, num_generations, scale)
        return rewards

    chosen = majority_reward if labels == "majority" else reward
    chosen.__name__ = f"verifier_{verifier_name}" + ("_majority" if labels == "majority" else "")
    return chosen


def stored_reward(num_generations: int, scale: str, record: list[dict]):
    """A TRL reward function returning the rewards the verify stage gave the replayed samples."""

    def reward(prompts, completions, problem_id, stored_reward, trainer_state=None, **_) -> list[float]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        rewards = [float(r) for r in stored_reward]
        _record(record, trainer_state, problem_id, texts, rewards, num_generations, scale)
        return rewards

    reward.__name__ = "verify_stage_reward"
    return reward


def _record(record: list[dict], trainer_state, problem_id, texts, rewards, num_generations: int, scale: str) -> None:
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


def positions_from_mask(model) -> None:
    """Make every forward pass without explicit positions count them from the first unmasked token
    (as `generate` does), so left padding does not shift a sequence's positions."""

    def hook(module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if kwargs.get("position_ids") is None and mask is not None and mask.dim() == 2 and kwargs.get("past_key_values") is None:
            kwargs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
        return args, kwargs

    model.register_forward_pre_hook(hook, with_kwargs=True)


def train_grpo(
    problems: pl.DataFrame, references: list[str | None], init_dir: Path, out_dir: Path, settings: TrainerSettings, *,
    grpo, verifier: str, answer_form: str, labels: str = "gold", control: str = "none",
) -> tuple[list[dict], list[dict]]:
    """Online GRPO: train the policy in `init_dir` on `problems` (prompt, problem_id), sampling in the
    trainer; save to `out_dir`. Returns (the trainer's log, the scored rollouts)."""
    questions, ids = problems["prompt"].to_list(), problems["problem_id"].to_list()
    record: list[dict] = []
    reward = verifier_reward(verifier, answer_form, grpo.num_generations, grpo.scale_rewards, record, labels, control,
                             settings.seed)
    columns = {"question": questions, "reference": list(references), "problem_id": ids}
    log = _train(columns, reward, None, init_dir, out_dir, settings, grpo=grpo, temperature=grpo.temperature,
                 max_completion_length=grpo.max_completion_length)
    return log, record


def train_grpo_round(
    groups: pl.DataFrame, init_dir: Path, out_dir: Path, settings: TrainerSettings, *, grpo,
) -> tuple[list[dict], list[dict]]:
    """GRPO on stored groups: `groups` holds num_generations rows per problem (problem_id, prompt,
    sample_idx, completion, token_ids, logprobs, reward, temperature), as generate and verify wrote
    them. Nothing is sampled. Returns (the trainer's log, the replayed rollouts as scored)."""
    from sharpen.prompting import render

    G = grpo.num_generations
    sizes = groups.group_by("problem_id").len()
    if sizes.height and (sizes["len"] != G).any():
        bad = sizes.filter(pl.col("len") != G).row(0)
        raise ValueError(f"train.grpo.num_generations: {G}, but problem {bad[0]!r} has {bad[1]} stored samples")
    temperatures = groups["temperature"].unique().to_list()
    if len(temperatures) != 1 or not temperatures[0] > 0:
        raise ValueError(f"generate.temperature: stored groups must share one sampling temperature > 0, got {temperatures}")
    groups = groups.sort("problem_id", "sample_idx")
    first = groups.group_by("problem_id", maintain_order=True).first()
    questions, ids = first["prompt"].to_list(), first["problem_id"].to_list()
    by_problem = {pid: rows for (pid,), rows in groups.group_by("problem_id", maintain_order=True)}
    record: list[dict] = []
    state: dict = {}

    def replay(prompts: list[str], trainer) -> dict:
        """TRL's rollout_func: the stored group of each prompt (they arrive G at a time) instead of sampling."""
        if "by_prompt" not in state:
            rendered = render(trainer.processing_class, list(dict.fromkeys(questions)), settings.chat)
            state["by_prompt"] = dict(zip(rendered, dict.fromkeys(questions), strict=True))
            state["problems_of"] = {}
            for q, pid in zip(questions, ids, strict=True):
                state["problems_of"].setdefault(q, [])
                if pid not in state["problems_of"][q]:
                    state["problems_of"][q].append(pid)
            state["turn"] = {}
        out = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "stored_reward": []}
        tokenizer = trainer.processing_class
        for start in range(0, len(prompts), G):
            question = state["by_prompt"][prompts[start]]
            candidates = state["problems_of"][question]  # problems sharing a prompt take turns
            turn = state["turn"].get(question, 0)
            state["turn"][question] = turn + 1
            rows = by_problem[candidates[turn % len(candidates)]]
            prompt_ids = tokenizer(prompts[start], add_special_tokens=False)["input_ids"]
            out["prompt_ids"] += [prompt_ids] * G
            out["completion_ids"] += rows["token_ids"].to_list()
            out["logprobs"] += rows["logprobs"].to_list()
            out["stored_reward"] += rows["reward"].to_list()
        return out

    reward = stored_reward(G, grpo.scale_rewards, record)
    columns = {"question": questions, "problem_id": ids}
    max_len = int(groups["token_ids"].list.len().max() or 1)
    log = _train(columns, reward, replay, init_dir, out_dir, settings, grpo=grpo, temperature=float(temperatures[0]),
                 max_completion_length=max_len)
    return log, record


def _train(columns: dict, reward, rollout_func, init_dir: Path, out_dir: Path, settings: TrainerSettings, *, grpo,
           temperature: float, max_completion_length: int) -> list[dict]:
    """Both modes: GRPOTrainer (with `rollout_func`: the stored-groups one) on `columns`, resumable; the log."""

    def build(policy: Policy, args: dict):
        import torch
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer

        from sharpen.prompting import render

        tokenizer = policy.tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        rows = _in_training_order(columns, grpo.steps * settings.batch_size // grpo.num_generations, settings.seed)
        dataset = Dataset.from_dict({"prompt": render(tokenizer, rows["question"], settings.chat), **rows})
        config = GRPOConfig(
            **args,
            max_steps=grpo.steps,
            num_generations=grpo.num_generations,
            max_completion_length=max_completion_length,
            temperature=temperature,
            loss_type=grpo.loss_type,
            beta=grpo.beta,
            epsilon=grpo.epsilon,
            epsilon_high=grpo.epsilon_high,
            scale_rewards=grpo.scale_rewards,
            mask_truncated_completions=grpo.mask_truncated_completions,
            num_iterations=grpo.num_iterations,
            activation_checkpointing=torch.cuda.is_available(),  # (gradient_checkpointing, renamed)
            shuffle_dataset=False,  # _in_training_order shuffled it, resumably
        )
        trainer_class = GRPOTrainer if rollout_func is None else _stored_groups_trainer()
        if grpo.negative_weight != 1.0:
            trainer_class = _negatives_weighted(trainer_class, grpo.negative_weight)
        kwargs = {} if rollout_func is None else {"rollout_func": rollout_func}
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is marked experimental in TRL 1.16
        trainer = trainer_class(model=policy.model, reward_funcs=[reward], args=config, train_dataset=dataset,
                                processing_class=tokenizer, peft_config=policy.peft_config, **kwargs)
        positions_from_mask(trainer.model)
        return trainer

    return train_resumable(init_dir, out_dir, settings, build, name="grpo")


def _in_training_order(columns: dict, prompts_needed: int, seed: int) -> dict:
    """The rows as the trainer will take them: as many passes over the problems as `prompts_needed`
    takes, each in its own seeded order. One long pass, so a resumed trainer skips to exactly where
    the killed one was (TRL's sampler restarts its shuffle on resume, repeating the first pass's order)."""
    import random

    n = len(next(iter(columns.values())))
    order: list[int] = []
    for epoch in range(-(-prompts_needed // n) if n else 0):
        block = list(range(n))
        random.Random(f"{seed}:{epoch}").shuffle(block)
        order += block
    return {name: [values[i] for i in order] for name, values in columns.items()}


def _negatives_weighted(base, weight: float):
    """`base` with every negative advantage multiplied by `weight` (train.grpo.negative_weight; 0: only
    samples better than their group's mean move the policy). The recorded rollouts keep the unweighted value."""

    class NegativesWeighted(base):
        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            advantages = out["advantages"]
            out["advantages"] = advantages.clamp(min=0) + weight * advantages.clamp(max=0)
            return out

    return NegativesWeighted


def _stored_groups_trainer():
    from trl import GRPOTrainer

    class StoredGroupsTrainer(GRPOTrainer):
        """GRPOTrainer whose "old" policy is the sampling policy: the log-probabilities generate recorded."""

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            out["old_per_token_logps"] = out.pop("sampling_per_token_logps")
            return out

    return StoredGroupsTrainer
