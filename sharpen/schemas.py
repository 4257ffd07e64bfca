"""Pandera models for every artifact that crosses a stage boundary.

Long format throughout: one row per problem, per sample or per kept example, keyed by
(problem_id, sample_idx) and sorted by problem_id. Every round artifact carries `round`.
`sharpen.io.read_frame` / `write_frame` validate against these on every read and write,
on a collected DataFrame (pandera checks only the schema of a LazyFrame). Every model is
`strict`: a foreign column is an error, not silently carried along. (Set in each Config:
pandera does not read options a Config inherits from a plain class.)
"""

from __future__ import annotations

from typing import Optional

import pandera.polars as pa

FINISH_REASONS = ["stop", "length"]
PAIR_RULES = ["correct_vs_incorrect", "gold_vs_sample", "judge_best_vs_worst"]
# why a proposal did or did not become a problem (sharpen/selfplay/execution.py has the execution ones)
PROPOSAL_REASONS = ["ok", "unparsable", "held_out", "forbidden", "error", "timeout", "nondeterministic",
                    "not_an_answer", "output_too_long", "too_few_calls"]
VERDICT_REASONS = ["ok", "wrong", "unparseable", "timeout", "restated", "not_final", "multiple"]
DROP_REASONS = [
    "kept", "group_band", "std_min", "difficulty_band", "incorrect", "below_threshold", "duplicate", "over_cap",
]
ORIGINS = ["sampled", "rationalized", "synthesized"]


def columns(model: type[pa.DataFrameModel]) -> dict:
    """A model's columns as a polars schema, in order: for empty artifacts and for frames built column by column."""
    return {name: column.dtype.type for name, column in model.to_schema().columns.items()}


def empty(model: type[pa.DataFrameModel]):
    """An empty frame with the model's columns (a stage with nothing to write still writes its artifact)."""
    import polars as pl

    return pl.DataFrame(schema=columns(model))


class Problem(pa.DataFrameModel):
    """A problem in the pool or the held-out set."""

    problem_id: str = pa.Field(unique=True, str_length={"min_value": 1})
    prompt: str
    answer: str = pa.Field(description="gold answer, as the verifier compares it")
    category: str = pa.Field(description="breakdown key, e.g. operand digit lengths '2+3'")
    tests: Optional[str] = pa.Field(nullable=True, description="code tasks: test code run by the unit_tests verifier")
    source: Optional[str] = pa.Field(nullable=True, description="generated tasks: JSON that rebuilds the problem")
    verifier: Optional[str] = pa.Field(nullable=True, description="the verifier scoring this problem when not the "
                                       "round's verify.verifier (self-play's abduction and induction tasks)")

    class Config:
        strict = True


class Sample(pa.DataFrameModel):
    """One completion sampled from the policy."""

    round: int = pa.Field(ge=0)
    problem_id: str
    sample_idx: int = pa.Field(ge=0)
    prompt: str
    completion: str
    num_tokens: int = pa.Field(ge=0)
    finish_reason: str = pa.Field(isin=FINISH_REASONS)
    policy_hash: str
    temperature: float = pa.Field(ge=0)
    # `generate.logprobs: true` only: the completion's token ids and, per token, log pi_sample
    # (what `train.grpo.rollouts: round` needs for its importance ratio)
    token_ids: Optional[list[int]] = pa.Field(nullable=True)
    logprobs: Optional[list[float]] = pa.Field(nullable=True)

    class Config:
        strict = True
        unique = ["problem_id", "sample_idx"]


class Verdict(pa.DataFrameModel):
    """The verifier's judgment of one sample."""

    round: int = pa.Field(ge=0)
    problem_id: str
    sample_idx: int = pa.Field(ge=0)
    extracted: Optional[str] = pa.Field(nullable=True, description="the answer read from the completion")
    reward: float = pa.Field(ge=0.0, le=1.0)
    correct: bool
    reason: str = pa.Field(isin=VERDICT_REASONS)
    verifier: str
    label: Optional[str] = pa.Field(nullable=True, description="the reference scored against: gold or majority answer")
    majority_ratio: Optional[float] = pa.Field(
        nullable=True, ge=0.0, le=1.0, description="share of the problem's samples giving the majority answer"
    )
    judge_text: Optional[str] = pa.Field(nullable=True, description="labels: judge — the policy's raw judgment")

    class Config:
        strict = True
        unique = ["problem_id", "sample_idx"]


class ProblemStats(pa.DataFrameModel):
    """Per-problem statistics of one round's verified samples."""

    round: int = pa.Field(ge=0)
    problem_id: str = pa.Field(unique=True)
    category: str
    n: int = pa.Field(ge=1)
    n_correct: int = pa.Field(ge=0)
    pass_rate: float = pa.Field(ge=0.0, le=1.0)
    reward_mean: float = pa.Field(ge=0.0, le=1.0)
    reward_std: float = pa.Field(ge=0.0)
    mean_abs_advantage: Optional[float] = pa.Field(ge=0.0, nullable=True, description="mean |reward - reward_mean|")

    class Config:
        strict = True


class Decision(pa.DataFrameModel):
    """The filter's decision on one sample, with the reason it was dropped."""

    round: int = pa.Field(ge=0)
    problem_id: str
    sample_idx: int = pa.Field(ge=0)
    keep: bool
    reason: str = pa.Field(isin=DROP_REASONS)

    class Config:
        strict = True
        unique = ["problem_id", "sample_idx"]


class TrainExample(pa.DataFrameModel):
    """A kept (prompt, completion) pair the train stage learns from."""

    round: int = pa.Field(ge=0)
    problem_id: str
    sample_idx: int = pa.Field(ge=0)
    prompt: str
    completion: str
    reward: float = pa.Field(ge=0.0, le=1.0)
    origin: str = pa.Field(isin=ORIGINS, description="plain sample, hint-guided rationale (STaR) or synthesized problem")

    class Config:
        strict = True
        unique = ["problem_id", "sample_idx"]


class Proposal(pa.DataFrameModel):
    """One proposal of self-play's proposer (stages/propose.py), and once the solver has answered,
    its reward (stages/train_proposer.py fills `solver_rate` and `reward`)."""

    round: int = pa.Field(ge=1)
    slot: str = pa.Field(description="the proposer prompt it answers: its GRPO group")
    sample_idx: int = pa.Field(ge=0)
    prompt: str = pa.Field(description="what the proposer was given")
    completion: str
    temperature: float = pa.Field(gt=0)
    token_ids: Optional[list[int]] = pa.Field(nullable=True)
    logprobs: Optional[list[float]] = pa.Field(nullable=True)
    question: Optional[str] = pa.Field(nullable=True, description="the parsed question; null: unparsable")
    reason: str = pa.Field(isin=PROPOSAL_REASONS, description="ok, or why it did not become a problem")
    problem_id: Optional[str] = pa.Field(nullable=True, description="the round problem it became (reason ok)")
    answer: Optional[str] = pa.Field(nullable=True, description="absolute-zero: the executor's output (the gold); "
                                     "r-zero: the truth where the task computes one, for logging only")
    cluster: int = pa.Field(ge=0, description="r-zero: its repetition cluster in the batch")
    repetition: float = pa.Field(ge=0, le=1, description="r-zero: the cluster's share of the batch (the penalty)")
    solver_rate: Optional[float] = pa.Field(nullable=True, ge=0, le=1, description="r-zero: p̂, the majority "
                                            "answer's share; absolute-zero: the solver's success rate")
    reward: Optional[float] = pa.Field(nullable=True, ge=-1, le=1)

    class Config:
        strict = True
        unique = ["round", "slot", "sample_idx"]


class PreferencePair(pa.DataFrameModel):
    """A (chosen, rejected) pair of completions of one problem for DPO, with why it was chosen: the
    rule and the scores (verifier reward, judge score / 5, or 1.0 for a gold completion)."""

    round: int = pa.Field(ge=0, description="the round whose samples made the pair (mix_previous: also the last)")
    problem_id: str
    prompt: str
    chosen: str
    rejected: str
    chosen_idx: int = pa.Field(ge=-1, description="sample_idx of the chosen completion; -1: the gold completion")
    rejected_idx: int = pa.Field(ge=0)
    chosen_reward: float = pa.Field(ge=0.0, le=1.0)
    rejected_reward: float = pa.Field(ge=0.0, le=1.0)
    rule: str = pa.Field(isin=PAIR_RULES, description="the pair rule (filter.pairs.rule)")

    class Config:
        strict = True
        unique = ["round", "problem_id", "chosen_idx", "rejected_idx"]


class Rollout(pa.DataFrameModel):
    """A completion online GRPO sampled and scored during training (objective grpo; empty otherwise)."""

    round: int = pa.Field(ge=0)
    step: int = pa.Field(ge=0, description="the trainer's optimizer step when it was scored")
    problem_id: str
    group: int = pa.Field(ge=0, description="the group within its reward call")
    completion: str
    reward: float = pa.Field(ge=0.0, le=1.0)
    advantage: float = pa.Field(description="reward - group mean (/ group std with scale_rewards: group)")

    class Config:
        strict = True


class LedgerRow(pa.DataFrameModel):
    """A problem's pass rate in one round: the loop's memory of what the policy keeps failing (SwS)."""

    round: int = pa.Field(ge=1)
    problem_id: str
    category: str
    pass_rate: float = pa.Field(ge=0.0, le=1.0)

    class Config:
        strict = True
        unique = ["round", "problem_id"]


class SynthesizedProblem(pa.DataFrameModel):
    """A problem the synthesize stage wrote, with where it came from and how hard the policy found it."""

    round: int = pa.Field(ge=1)
    problem_id: str = pa.Field(unique=True, str_length={"min_value": 1})
    prompt: str
    answer: str
    category: str
    source_id: str = pa.Field(description="the weak problem it was made from")
    synthesizer: str
    pass_rate: float = pa.Field(ge=0.0, le=1.0, description="the current policy's accuracy on it")
    admitted: bool

    class Config:
        strict = True


class EvalDraw(pa.DataFrameModel):
    """A held-out completion as drawn, before verification (evaluate's resumable shards); sample_idx -1
    is the greedy decode. Kept apart from its verdict so a failed verification never loses the draw."""

    round: int = pa.Field(ge=0)
    problem_id: str
    sample_idx: int = pa.Field(ge=-1)
    completion: str

    class Config:
        strict = True
        unique = ["problem_id", "sample_idx"]


class EvalSample(pa.DataFrameModel):
    """A held-out sample with its verdict; sample_idx -1 is the greedy decode."""

    round: int = pa.Field(ge=0)
    problem_id: str
    category: str
    sample_idx: int = pa.Field(ge=-1)
    completion: str
    extracted: Optional[str] = pa.Field(nullable=True)
    correct: bool
    reason: Optional[str] = pa.Field(nullable=True, isin=VERDICT_REASONS, description="the verifier's reason (absent before answer forms)")

    class Config:
        strict = True
        unique = ["problem_id", "sample_idx"]
