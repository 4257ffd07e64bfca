"""The params of the train stage: `train`, with its `dpo`, `grpo` and `lora` subsections.

Run: `sharpen params` validates this section of params.yaml with the rest.
"""

from __future__ import annotations

import math

from typing import Literal

from pydantic import Field, model_validator

from sharpen.params.section import _Section


class LoraParams(_Section):
    """LoRA via peft: the round's policy is an adapter over data/base/model."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: tuple[str, ...] | Literal["all-linear"] = ("q_proj", "k_proj", "v_proj", "o_proj")


class DPOParams(_Section):
    """TRL's DPOTrainer: the sigmoid loss with temperature `beta`, plus `nll_weight` x the NLL of the
    chosen completion (iterative RPO's term; 0: plain DPO). The reference is the init policy."""

    beta: float = Field(0.1, ge=0, le=100, allow_inf_nan=False)
    nll_weight: float = Field(1.0, ge=0, le=100, allow_inf_nan=False)


class GRPOParams(_Section):
    """TRL's GRPOTrainer, online: `num_generations` completions per problem sampled by the policy being
    trained, rewarded by the round's verifier, for `steps` optimizer steps. DAPO's loss and clip-higher
    by default (Dr. GRPO: `loss_type: dr_grpo, scale_rewards: none`)."""

    rollouts: Literal["online", "round"] = Field(
        "online", description="online: the trainer samples; round: train on the groups generate sampled and verify "
        "scored, with the importance ratio against generate's recorded log-probabilities")
    steps: int = Field(20, ge=1, le=1_000_000, description="optimizer steps per round")
    num_generations: int = Field(8, ge=2, le=256, description="completions per problem (the group); divides train.batch_size")
    max_completion_length: int = Field(16, ge=1, le=65536, description="online: new tokens per completion (round: as generated)")
    temperature: float = Field(1.0, gt=0, le=10, allow_inf_nan=False)
    loss_type: Literal["grpo", "dr_grpo", "dapo"] = "dapo"
    beta: float = Field(0.0, ge=0, le=100, allow_inf_nan=False, description="KL to the reference (0: none loaded)")
    epsilon: float = Field(0.2, gt=0, lt=1, allow_inf_nan=False)
    epsilon_high: float | None = Field(0.28, gt=0, lt=10, allow_inf_nan=False, description="DAPO's clip-higher; null = epsilon")
    scale_rewards: Literal["group", "batch", "none"] = "group"
    mask_truncated_completions: bool = False
    num_iterations: int = Field(1, ge=1, le=64, description="updates per batch of groups (TRL's num_iterations; >1 "
                                "reuses each batch with the clipped ratio)")
    negative_weight: float = Field(1.0, ge=0, le=1, description="multiplies the advantage of samples worse than "
                                   "their group's mean (1: GRPO; 0: only better samples move the policy)")
    epochs: float | None = Field(None, gt=0, le=1000, description="rollouts round: passes over the stored groups, "
                                 "which sets the steps (ceil(epochs x groups x num_generations / train.batch_size)); "
                                 "null: `steps`")

    @model_validator(mode="after")
    def _clip_ordered(self) -> GRPOParams:
        if self.epsilon_high is not None and self.epsilon_high < self.epsilon:
            raise ValueError(f"epsilon_high ({self.epsilon_high}) < epsilon ({self.epsilon})")
        if self.epochs is not None and self.rollouts != "round":
            raise ValueError("epochs: passes over stored groups are for rollouts: round (online GRPO samples afresh "
                             "each step; set steps)")
        return self

    def steps_for(self, groups: int, batch_size: int) -> int:
        """The optimizer steps of a round: `steps`, or `epochs` passes over `groups` stored groups."""
        if self.epochs is None:
            return self.steps
        return max(1, math.ceil(self.epochs * groups * self.num_generations / batch_size))


class TrainParams(_Section):
    objective: Literal["sft", "dpo", "grpo"] = "sft"
    dpo: DPOParams | None = Field(None, description="objective dpo: its settings (null: the defaults)")
    grpo: GRPOParams | None = Field(None, description="objective grpo: its settings (null: the defaults)")
    lora: LoraParams | None = Field(None, description="null: full fine-tuning")
    init: Literal["base", "previous"] = "base"
    lr: float = Field(2e-4, gt=0, le=1)
    lr_scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="fraction of steps warming up the fresh optimizer")
    epochs: float = Field(3.0, gt=0, le=10_000)
    batch_size: int = Field(32, ge=1)
    max_length: int | None = Field(
        None, ge=8, description="tokens per training sequence (prompt + completion + EOS; a DPO pair's longer side); null: "
        "the longest example of the round, so nothing is cut; a value below the longest example is refused before "
        "training (sharpen/objectives/lengths.py)")
    seed: int = 0
    checkpoint_steps: int = Field(
        50, ge=0, description="save a resumable checkpoint every N optimizer steps (the last one is kept); "
        "a killed train resumes from it. 0: none, a killed train starts over")
    processes: int = Field(
        1, ge=1, le=1024, description="training processes on this machine (DDP under torchrun: one per GPU, or CPU "
        "processes on gloo); batch_size stays the global batch, split evenly (sharpen/objectives/processes.py)")

    @model_validator(mode="after")
    def _batch_splits(self) -> TrainParams:
        if self.batch_size % self.processes:
            raise ValueError(f"train.batch_size: {self.batch_size} is the global batch and must split evenly over "
                             f"train.processes ({self.processes})")
        if self.processes > 1 and self.objective == "grpo":
            raise ValueError("train.processes: objective grpo runs on one process so far (sft and dpo run on "
                             "several); set train.processes: 1")
        return self
