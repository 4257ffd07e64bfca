"""The train stage's objectives, one class each behind `Objective`, chosen from `OBJECTIVES` by
`train.objective` (and for grpo, `train.grpo.rollouts`).

Each says what it trains on (its inputs, their rows and unit), which inputs the data hash covers,
why it skips when there is nothing to learn from, what it checks before a model loads, how it
trains, and its extra loss.csv columns and metrics.json keys.

Run: `python -m stages.train ...` (DVC stage `train`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import polars as pl

from sharpen.filters import PROBLEM_RULES
from sharpen.io import ArtifactError, hash_path, read_frame
from sharpen.objectives.dpo import train_dpo
from sharpen.objectives.grpo import train_grpo, train_grpo_round, without_equal_reward_groups
from sharpen.objectives.lengths import fit_max_length
from sharpen.objectives.sft import train_sft
from sharpen.objectives.trainer import TrainerSettings
from sharpen.params import DPOParams, GRPOParams
from sharpen.schemas import Decision, PreferencePair, Problem, Sample, Verdict
from sharpen.verifiers import gold_references, preflight

# metrics.json keys that some objectives fill and the others leave null
METRICS = ("pairs", "reference_hash", "problems", "rollouts_from", "zero_variance_groups", "groups")


@dataclass(frozen=True)
class Inputs:
    """The train stage's inputs: the examples (kept and synthesized: every objective's metrics count
    them) and the paths of the round's other artifacts."""

    examples: pl.DataFrame
    kept: Path
    synthesized: Path
    pairs: Path
    problems: Path
    decisions: Path
    samples: Path
    verdicts: Path
    base: Path


class Objective(Protocol):
    """One objective as the train stage runs it, built by `OBJECTIVES[key](inputs, params)` (which reads
    the inputs it trains on)."""

    unit: str  # what it trains on: examples, pairs or problems
    rows: int  # how many of them
    hashed: list[Path]  # the inputs the data hash (and so the checkpoints' fingerprint) covers
    skipped: str | None  # why nothing is trained (the init model is written unchanged); None: train
    curve: dict[str, str]  # loss.csv columns beyond step, loss, lr: our name -> the trainer's log key

    def check(self, init_dir: Path) -> int | None:
        """Before any model loads (not when skipped): refuse what cannot train; the max_length to train with."""

    def train(self, init_dir: Path, out_dir: Path, settings: TrainerSettings,
              max_length: int | None) -> tuple[list[dict], list[dict]]:
        """Train and save to `out_dir`: (the trainer's per-step log, the scored rollouts)."""

    def metrics(self, rollouts: pl.DataFrame, init_hash: str) -> dict:
        """This objective's metrics.json keys (of METRICS, and max_length where it has none)."""


class SFT:
    """`sft`: the kept and synthesized examples; max_length sized (or refused) by fit_max_length."""

    unit, curve = "examples", {}

    def __init__(self, inputs: Inputs, params) -> None:
        self.examples, self.t, self.chat = inputs.examples, params.train, params.task.chat
        self.rows, self.hashed = self.examples.height, [inputs.kept, inputs.synthesized]
        self.skipped = None if self.rows else "the filter kept no samples"

    def check(self, init_dir: Path) -> int:
        e = self.examples
        return fit_max_length(init_dir, e["prompt"].to_list(), [e["completion"].to_list()], e["problem_id"].to_list(),
                              max_length=self.t.max_length, chat=self.chat, what=self.unit)

    def train(self, init_dir, out_dir, settings, max_length):
        return train_sft(self.examples, init_dir, out_dir, settings, max_length=max_length), []

    def metrics(self, rollouts, init_hash) -> dict:
        return {}


class DPO:
    """`dpo`: the filter's preference pairs; max_length sized by fit_max_length from a pair's longer side."""

    unit = "pairs"
    curve = {"reward_margin": "rewards/margins", "reward_accuracy": "rewards/accuracies"}

    def __init__(self, inputs: Inputs, params) -> None:
        self.pairs, self.base = read_frame(inputs.pairs, PreferencePair), inputs.base
        self.t, self.chat = params.train, params.task.chat
        self.rows, self.hashed = self.pairs.height, [inputs.pairs]
        self.skipped = None if self.rows else ("the filter built no preference pairs (why, per problem: "
                                               "problems_without_pairs in data/round/filter/metrics.json)")

    def check(self, init_dir: Path) -> int:
        p = self.pairs
        return fit_max_length(init_dir, p["prompt"].to_list(), [p["chosen"].to_list(), p["rejected"].to_list()],
                              p["problem_id"].to_list(), max_length=self.t.max_length, chat=self.chat, what=self.unit)

    def train(self, init_dir, out_dir, settings, max_length):
        d = self.t.dpo or DPOParams()
        return train_dpo(self.pairs, init_dir, out_dir, settings, beta=d.beta, nll_weight=d.nll_weight,
                         max_length=max_length), []

    def metrics(self, rollouts, init_hash) -> dict:
        # DPO's reference: the init policy (SPIN, init previous: the previous round's), or with LoRA the base
        return {"pairs": self.pairs.height, "reference_hash": hash_path(self.base) if self.t.lora else init_hash}


GRPO_CURVE = {"reward_mean": "reward", "reward_std": "reward_std", "kl": "kl", "entropy": "entropy",
              "clip_fraction": "clip_ratio/region_mean"}
NO_LEARNABLE = ("the filter's problem rules kept no problem (see data/round/filter/metrics.json: all right or all "
                "wrong groups teach GRPO nothing)")


class GRPOOnline:
    """`grpo`, `rollouts: online`: the problems no problem rule dropped, sampled and rewarded inside the
    trainer; the verifier is preflighted on them (gold labels) before a model loads."""

    unit, curve = "problems", GRPO_CURVE

    def __init__(self, inputs: Inputs, params) -> None:
        self.grpo, self.verify = params.train.grpo or GRPOParams(), params.verify
        self.problems = learnable(read_frame(inputs.problems, Problem), read_frame(inputs.decisions, Decision))
        self.rows, self.hashed = self.problems.height, [inputs.problems, inputs.decisions]
        self.skipped = None if self.rows else NO_LEARNABLE

    def check(self, init_dir: Path) -> None:
        if self.verify.labels == "gold":  # the reward runs before a step does
            preflight(self.problems, self.verify.verifier, self.verify.answer_form)

    def train(self, init_dir, out_dir, settings, max_length):
        v, problems = self.verify, self.problems
        refs = ([None] * problems.height if v.labels == "majority"  # each group's own vote; gold is never read
                else gold_references(v.verifier, problems))
        return train_grpo(problems, refs, init_dir, out_dir, settings, grpo=self.grpo, verifier=v.verifier,
                          answer_form=v.answer_form, labels=v.labels, control=v.reward_control)

    def metrics(self, rollouts, init_hash) -> dict:
        # online: the scored groups whose rewards were all equal
        scored = _scored_groups(rollouts)
        return {"problems": self.problems.height, "rollouts_from": self.grpo.rollouts, "max_length": None,
                "zero_variance_groups": int((scored["std"] == 0).sum()), "groups": scored.height}


class GRPORound:
    """`grpo`, `rollouts: round`: the learnable problems' stored groups (generate's samples, verify's
    rewards), groups with equal rewards dropped."""

    unit, curve = "problems", GRPO_CURVE

    def __init__(self, inputs: Inputs, params) -> None:
        self.grpo = params.train.grpo or GRPOParams()
        problems = learnable(read_frame(inputs.problems, Problem), read_frame(inputs.decisions, Decision))
        self.groups, self.zero_variance = stored_groups(problems, read_frame(inputs.samples, Sample),
                                                        read_frame(inputs.verdicts, Verdict), inputs.samples)
        self.problems = problems.join(self.groups.select("problem_id").unique(), on="problem_id")
        self.rows = self.problems.height
        self.hashed = [inputs.problems, inputs.decisions, inputs.samples, inputs.verdicts]
        self.skipped = None if self.rows else (
            f"every stored group had equal rewards ({self.zero_variance} dropped; they teach GRPO nothing)"
            if self.zero_variance else NO_LEARNABLE)

    def check(self, init_dir: Path) -> None:
        return None

    def train(self, init_dir, out_dir, settings, max_length):
        grpo = self.grpo.model_copy(update={"steps": self.grpo.steps_for(self.rows, settings.batch_size)})
        return train_grpo_round(self.groups, init_dir, out_dir, settings, grpo=grpo)

    def metrics(self, rollouts, init_hash) -> dict:
        # round: the stored groups dropped before training
        return {"problems": self.problems.height, "rollouts_from": self.grpo.rollouts, "max_length": None,
                "zero_variance_groups": self.zero_variance, "groups": _scored_groups(rollouts).height}


OBJECTIVES: dict[str, Callable[[Inputs, object], Objective]] = {
    "sft": SFT, "dpo": DPO, "grpo/online": GRPOOnline, "grpo/round": GRPORound,
}


def objective_key(train) -> str:
    """The `OBJECTIVES` key of `train` (TrainParams): the objective, and for grpo where its rollouts come from."""
    return f"grpo/{(train.grpo or GRPOParams()).rollouts}" if train.objective == "grpo" else train.objective


def learnable(problems: pl.DataFrame, decisions: pl.DataFrame) -> pl.DataFrame:
    """The round's problems that no problem rule (filter.groups) dropped: GRPO's training prompts."""
    dropped = decisions.filter(pl.col("reason").is_in(PROBLEM_RULES)).select("problem_id").unique()
    sampled = decisions.select("problem_id").unique()
    return problems.join(sampled, on="problem_id").join(dropped, on="problem_id", how="anti").sort("problem_id")


def stored_groups(problems: pl.DataFrame, samples: pl.DataFrame, verdicts: pl.DataFrame,
                  path: Path) -> tuple[pl.DataFrame, int]:
    """`rollouts: round`: the learnable problems' samples with their tokens, log-probabilities and
    rewards; groups whose rewards are all equal are dropped (returned: their count)."""
    if "logprobs" not in samples.columns or samples["logprobs"].null_count():
        raise ArtifactError(f"{path}: has no per-token log-probabilities (generate ran with generate.logprobs off); "
                            "`rollouts: round` needs them: `dvc repro` reruns generate")
    lengths = samples.filter(pl.col("token_ids").list.len() != pl.col("logprobs").list.len())
    if lengths.height:
        raise ArtifactError(f"{path}: sample {lengths.row(0, named=True)['problem_id']!r} has token_ids and logprobs "
                            "of different lengths")
    joined = (samples.join(problems.select("problem_id"), on="problem_id")
              .join(verdicts.select("problem_id", "sample_idx", "reward"), on=["problem_id", "sample_idx"], how="left"))
    if joined["reward"].null_count():
        raise ArtifactError(f"{path}: some samples have no verdict; `dvc repro` reruns verify")
    kept, dropped = without_equal_reward_groups(joined, "problem_id")
    return kept.sort("problem_id", "sample_idx"), dropped


def _scored_groups(rollouts: pl.DataFrame) -> pl.DataFrame:
    """One row per (step, group) the trainer scored, with the std of its rewards."""
    return rollouts.group_by("step", "group").agg(pl.col("reward").std(ddof=0).alias("std"))
