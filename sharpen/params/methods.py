"""The params of the stages that shape a round's data: `filter` (problem and sample rules, DPO pairs),
`synthesize` (STaR, SwS), `controller` (B-STaR, SEC) and `propose` (self-play's proposer).

Run: `sharpen params` validates these sections of params.yaml with the rest.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from sharpen.params.section import _Section


class GroupBand(_Section):
    """Keep problems whose pass rate over their k samples lies in [lo, hi] (DAPO, MASA, ReST-GRPO)."""

    rule: Literal["group_band"]
    lo: float = Field(0.0, ge=0, le=1)
    hi: float = Field(1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> GroupBand:
        if self.lo >= self.hi:
            raise ValueError(f"lo ({self.lo}) must be below hi ({self.hi})")
        return self


class StdMin(_Section):
    """Keep problems whose reward std over their k samples exceeds eps (ReST-GRPO: 0.05)."""

    rule: Literal["std_min"]
    eps: float = Field(0.05, ge=0)


class DifficultyBand(GroupBand):
    """Keep problems whose accuracy in the last round that sampled them (the ledger) lies in
    [lo, hi]; problems the ledger has not seen are kept. Judged before this round's samples."""

    rule: Literal["difficulty_band"]  # type: ignore[assignment]


GroupRule = Annotated[Union[GroupBand, StdMin, DifficultyBand], Field(discriminator="rule")]


class PairParams(_Section):
    """Preference pairs for `train.objective: dpo`, each recorded with its rule and the scores behind it.
    - `correct_vs_incorrect`: a verified-correct sample against an incorrect one of the same problem
      (iterative reasoning preference optimisation);
    - `gold_vs_sample`: the gold completion against the policy's own sample (SPIN); samples the
      verifier finds correct agree with the gold and make no pair;
    - `judge_best_vs_worst`: the best-scored sample against the worst (Self-Rewarding); ties make
      no pair. `scores: judge` ranks by the self-judge (`verify.labels: judge`); `scores: verifier`
      by the verifier's reward, a labelled stand-in judge for models too small to follow a rubric."""

    rule: Literal["correct_vs_incorrect", "gold_vs_sample", "judge_best_vs_worst"] = "correct_vs_incorrect"
    max_per_problem: int = Field(1, ge=1, le=64, description="most pairs per problem (distinct completions)")
    scores: Literal["judge", "verifier"] = Field("judge", description="judge_best_vs_worst: what ranks the samples")
    mix_previous: bool = Field(False, description="also train on the previous round's pairs (SPIN: rounds t and t-1)")


class FilterParams(_Section):
    """Which samples teach. Problem rules (`groups`) run first, then the sample rule `select`:
    `correct` (ReST-EM), `threshold` (reward > tau; B-STaR), `all` (the no-verifier control).
    Repeats are dropped (`dedup`) and at most `cap` samples kept per problem, best reward first."""

    select: Literal["correct", "threshold", "all"] = "correct"
    tau: float | None = Field(None, ge=-1, le=1, description="threshold: keep reward > tau; null = the controller's")
    cap: int = Field(10, ge=1, description="most samples kept per problem")
    dedup: bool = Field(True, description="drop repeated completions of the same problem")
    groups: tuple[GroupRule, ...] = Field((), description="problem rules, applied in order before `select`")
    pairs: PairParams | None = Field(None, description="build DPO preference pairs (train.objective: dpo); null: none")


class RationalizeParams(_Section):
    """STaR: regenerate failed problems with the gold answer as a hint; keep rationales that reach it."""

    k: int = Field(1, ge=1, description="hinted samples per failed problem")
    temperature: float = Field(0.0, ge=0)
    max_new_tokens: int = Field(40, ge=1)


class WeaknessParams(_Section):
    """SwS: find weak problems in the ledger, synthesize new ones in their categories, admit by difficulty."""

    max_acc_below: float = Field(0.5, ge=0, le=1, description="weak if best accuracy over rounds < this")
    slope_max: float = Field(0.0, description="... and its accuracy trend slope (per round) <= this")
    budget: int = Field(256, ge=0, description="candidate problems per round, split by category failure ratio")
    k: int = Field(8, ge=1, description="samples per candidate to measure its difficulty under the policy")
    temperature: float = Field(1.0, ge=0)
    band: tuple[float, float] = Field((0.125, 0.875), description="admit candidates with pass rate in [lo, hi]")
    synthesizer: Literal["templated", "llm"] = "templated"

    @model_validator(mode="after")
    def _band_ordered(self) -> WeaknessParams:
        lo, hi = self.band
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"band {list(self.band)} must satisfy 0 <= lo <= hi <= 1")
        return self


class _MethodSection(_Section):
    """A section whose `kind` names the subsection holding that kind's parameters."""

    kind: str = "none"

    @model_validator(mode="after")
    def _kind_configured(self):
        if self.kind != "none" and getattr(self, self.kind) is None:
            raise ValueError(f"kind {self.kind!r} needs a `{self.kind}` subsection")
        return self


class SynthesizeParams(_MethodSection):
    """Extra training data made after the filter: none, STaR rationalization, or SwS problems."""

    kind: Literal["none", "rationalize", "weakness"] = "none"
    rationalize: RationalizeParams | None = None
    weakness: WeaknessParams | None = None


class BStarParams(_Section):
    """B-STaR: on a dev subset, pick the (temperature, tau) with the best mean balance score."""

    dev_size: int = Field(128, ge=1, description="pool problems sampled for the search")
    k: int = Field(16, ge=1, description="samples per dev problem and temperature")
    temperatures: tuple[float, ...] = Field((0.5, 0.75, 1.0, 1.25, 1.5), min_length=1)
    tau_step: float = Field(0.05, gt=0, le=1, description="taus swept over [-1, 1) in this step")
    n_star: int = Field(8, ge=1, description="correct samples per query that count as enough")


class SECParams(_Section):
    """SEC (self-evolving curriculum): a bandit over problem categories. Each round draws
    `generate.problems_per_round` problems, category by category from softmax(Q / tau); after the
    round, a category's reward is the mean |advantage| of its samples and Q <- (1 - alpha) Q + alpha r."""

    alpha: float = Field(0.5, gt=0, le=1, allow_inf_nan=False, description="learning rate of Q")
    tau: float = Field(0.5, gt=0, le=100, allow_inf_nan=False, description="softmax temperature over Q (paper: 0.2-1.0)")


class ControllerParams(_MethodSection):
    """Sets the next round's sampling before it generates: none, the B-STaR search, or the SEC curriculum."""

    kind: Literal["none", "bstar", "sec"] = "none"
    bstar: BStarParams | None = None
    sec: SECParams | None = None


# Each Absolute Zero task type's solver prompt (function-form programs) and the fields it must hold.
TASK_PROMPTS = {"deduction": ("question", ("{program}", "{call}")),
                "abduction": ("abduction_question", ("{program}", "{output}", "{entry_point}")),
                "induction": ("induction_question", ("{entry_point}", "{examples}"))}


class ProposeParams(_Section):
    """Self-play's proposer role (sharpen/selfplay): it writes the round's problems, the solver answers them
    generate.k times, and the proposer learns by GRPO on its own groups from what the solver did."""

    kind: Literal["none", "r-zero", "absolute-zero"] = Field(
        "none", description="none: problems come from the task's pool | r-zero: challenger, rewarded by the "
        "solver's uncertainty | absolute-zero: programs validated and labelled by execution")
    prompt: str = Field("?", min_length=1, description="what the proposer is given (the tiny base learnt `?` -> a "
                        "question, base.propose_fraction)")
    prompts: int = Field(16, ge=1, le=100_000, description="proposer prompts a round; each gets `group` proposals")
    examples: int = Field(3, ge=0, le=64, description="a prompt with `{examples}`: how many accepted tasks from "
                          "the buffer (data/state/buffer.parquet) it shows")
    group: int = Field(8, ge=2, le=256, description="proposals per prompt: the proposer's GRPO group")
    temperature: float = Field(1.0, gt=0, le=10, allow_inf_nan=False)
    max_new_tokens: int = Field(12, ge=1, le=4096)
    repetition_threshold: float = Field(0.5, gt=0, le=1, allow_inf_nan=False,
                                        description="BLEU similarity at which two proposals share a repetition cluster")
    repetition_weight: float | None = Field(
        None, ge=0, le=1, allow_inf_nan=False, description="weight of the repetition penalty (a proposal's cluster's "
        "share of the batch) in the proposer's reward; null: the paper's (r-zero 1, absolute-zero 0). With "
        "absolute-zero, > 0 penalises a batch that repeats one program even where the solver's rate is 0 or 1")
    seed_examples: tuple[str, ...] = Field(
        (), description="tasks a prompt's `{examples}` may show besides the buffer's (the paper's seed buffer): "
        "questions in the proposer's own format (absolute-zero, program function: a program with its calls); each "
        "is checked like a proposal when the round proposes")
    program: Literal["expression", "function"] = Field(
        "expression", description="absolute-zero: what a program is. expression: one expression over integer "
        "literals, posed as `<program>=` (the tiny base) | function: definitions then one call with literal "
        "arguments on the last line, posed to the solver by `propose.question` (an LLM proposer)")
    question: str = Field(
        "What does `{call}` return?\n```python\n{program}```\nReply with only the number.", min_length=1,
        description="absolute-zero, program function: the solver's prompt; {program} (the definitions) and {call}")
    tasks: tuple[Literal["deduction", "abduction", "induction"], ...] = Field(
        ("deduction",), min_length=1, description="absolute-zero: the task types posed to the solver; slot i's "
        "proposals become tasks of type tasks[i % len(tasks)]. deduction: program + input -> output | abduction "
        "(program function): program + output -> an input | induction (program function, >= 2 calls): "
        "input/output pairs -> the program")
    abduction_question: str = Field(
        "Find an input for which this function returns {output}:\n```python\n{program}```\nReply with only the "
        "call, like `{entry_point}(...)`.", min_length=1,
        description="absolute-zero abduction: the solver's prompt; {program}, {output} and {entry_point}")
    induction_question: str = Field(
        "Write a Python function `{entry_point}` that gives these results:\n{examples}\nReply with only the "
        "function in a ```python block.", min_length=1,
        description="absolute-zero induction: the solver's prompt; {entry_point} and {examples} (the first half "
        "of the calls, `f(3) == 8` a line; the solver's function must give every call's value)")
    timeout_s: float = Field(2.0, gt=0, le=60, allow_inf_nan=False, description="absolute-zero: per program run")
    max_output_chars: int = Field(32, ge=1, le=4096, description="absolute-zero: longest gold output accepted")
    steps: int = Field(20, ge=1, le=1_000_000, description="the proposer's GRPO optimizer steps a round")
    lr: float = Field(2e-5, gt=0, le=1, allow_inf_nan=False)
    batch_size: int = Field(16, ge=2, le=100_000, description="proposals per optimizer step (whole groups)")
