"""Typed, validated params: `params.yaml` → frozen pydantic models, one per stage section.

Every section is validated whenever any stage loads params, so an unknown key, a wrong type or
an out-of-range value anywhere stops the run before work starts, with an error naming the key
and the allowed values. This package is the schema only; reading params.yaml and laying the recipe
under it is sharpen/config.py. Check a file by hand with `sharpen params` (or `sharpen params other.yaml`).

Here: the root `Params` and the checks across sections. The sections: section.py (the shared base,
ParamsError), data.py (task, base), sampling.py (generate, verify, evaluate), methods.py (filter,
synthesize, controller, propose), train.py (train: dpo, grpo, lora), advance.py (advance, loop), tracking.py (tracking).
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from sharpen.params.data import BaseParams, TaskParams
from sharpen.params.advance import AdvanceParams, CollapseParams, LoopParams, PlateauParams
from sharpen.params.methods import (
    TASK_PROMPTS,
    BStarParams,
    ControllerParams,
    DifficultyBand,
    FilterParams,
    GroupBand,
    GroupRule,
    PairParams,
    ProposeParams,
    RationalizeParams,
    SECParams,
    StdMin,
    SynthesizeParams,
    WeaknessParams,
)
from sharpen.params.sampling import (
    SERVER_BACKENDS,
    EvaluateParams,
    GenerateParams,
    JudgeParams,
    RayParams,
    SamplingParams,
    ServerParams,
    VerifyParams,
)
from sharpen.params.section import ParamsError, _Section
from sharpen.params.tracking import TrackingParams
from sharpen.params.train import DPOParams, GRPOParams, LoraParams, TrainParams

__all__ = [
    "SERVER_BACKENDS", "TASK_PROMPTS", "AdvanceParams", "BStarParams", "CollapseParams", "BaseParams", "ControllerParams", "DPOParams",
    "DifficultyBand", "EvaluateParams", "FilterParams", "GRPOParams", "GenerateParams", "GroupBand", "GroupRule",
    "JudgeParams", "LoopParams", "LoraParams", "PairParams", "Params", "ParamsError", "PlateauParams",
    "ProposeParams", "RationalizeParams", "RayParams", "SECParams", "SamplingParams", "ServerParams", "StdMin",
    "SynthesizeParams", "TaskParams", "TrackingParams", "TrainParams", "VerifyParams", "WeaknessParams",
]


class Params(_Section):
    round: int = Field(1, ge=1)
    seed: int = 0
    recipe: str = "rest-em"
    model: str = Field("tiny", description="tiny | a preset (smollm2-135m) | a directory | a .gguf file | a hub id")
    task: TaskParams = TaskParams()
    base: BaseParams = BaseParams()
    generate: GenerateParams = GenerateParams()
    verify: VerifyParams = VerifyParams()
    filter: FilterParams = FilterParams()
    synthesize: SynthesizeParams = SynthesizeParams()
    controller: ControllerParams = ControllerParams()
    propose: ProposeParams = ProposeParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    advance: AdvanceParams = AdvanceParams()
    loop: LoopParams = LoopParams()
    tracking: TrackingParams = TrackingParams()

    @field_validator("model")
    @classmethod
    def _model_known(cls, model: str) -> str:
        from sharpen.models import ModelError, describe

        try:
            describe(model)
        except ModelError as e:
            raise ValueError(str(e).removeprefix("model: ")) from None
        return model

    @model_validator(mode="after")
    def _task_fits(self) -> Params:
        if self.model == "tiny" and self.task.name == "humaneval":
            raise ValueError("task.name: `model: tiny` knows only addition; humaneval needs a pretrained model")
        if self.synthesize.kind != "none" and (self.task.name != "arithmetic" or self.task.template != "{prompt}"):
            raise ValueError(f"synthesize.kind: {self.synthesize.kind} (hinted prompts, templated problems) exists only "
                             "for the arithmetic task with its plain prompts so far")
        own = {"humaneval": "unit_tests", "reasoning_gym": "reasoning_gym"}  # tasks scored only one way
        task, verifier = self.task.name, self.verify.verifier
        if task in own and verifier != own[task]:
            raise ValueError(f"verify.verifier: task {task} is scored by {own[task]}, not {verifier}")
        if task == "arithmetic" and verifier in own.values():
            raise ValueError(f"verify.verifier: task arithmetic is scored by exact_integer or math_equiv, not {verifier}")
        return self

    @model_validator(mode="after")
    def _self_play_fits(self) -> Params:
        p = self.propose
        if p.kind == "none":
            return self
        if self.task.name != "arithmetic":
            raise ValueError(f"propose.kind: {p.kind} proposes problems for the arithmetic task only so far "
                             f"(task.name is {self.task.name})")
        if self.generate.backend in SERVER_BACKENDS:
            raise ValueError(f"generate.backend: self-play's proposer records its log-probabilities, which backend "
                             f"{self.generate.backend} does not take from a server; use hf or vllm")
        if self.generate.k < 2:
            raise ValueError(f"generate.k: self-play's solver answers each proposed question m = generate.k times, "
                             f"and m must be at least 2 (got {self.generate.k})")
        if p.program == "function" and p.kind != "absolute-zero":
            raise ValueError(f"propose.program: function is absolute-zero's program form; {p.kind} proposes additions")
        if p.program == "function":
            for key, fields in (TASK_PROMPTS[t] for t in p.tasks):
                for field in fields:
                    if field not in getattr(p, key):
                        raise ValueError(f"propose.{key}: must hold {field} (got {getattr(p, key)!r})")
        if len(set(p.tasks)) != len(p.tasks):
            raise ValueError(f"propose.tasks: each task type once (got {list(p.tasks)})")
        if p.tasks != ("deduction",) and (p.kind != "absolute-zero" or p.program != "function"):
            raise ValueError(f"propose.tasks: {', '.join(t for t in p.tasks if t != 'deduction')} need "
                             "propose.kind absolute-zero and propose.program function (a program with an input); "
                             f"{p.kind} with program {p.program} poses deduction only")
        if p.kind == "absolute-zero" and p.program == "expression" and self.task.template != "{prompt}":
            raise ValueError("task.template: absolute-zero's tasks are programs, posed as `<program>=`; "
                             f"the template {self.task.template!r} cannot hold them (use \"{{prompt}}\")")
        if p.batch_size % p.group:
            raise ValueError(f"propose.group: {p.group} must divide propose.batch_size ({p.batch_size})")
        want = {"r-zero": "majority", "absolute-zero": "gold"}[p.kind]
        if self.verify.labels != want:
            raise ValueError(f"verify.labels: {p.kind} labels the solver's answers by "
                             f"{'majority vote (it never reads the truth)' if want == 'majority' else 'the executor'}; "
                             f"set verify.labels: {want} (now {self.verify.labels})")
        if self.controller.kind != "none" or self.synthesize.kind != "none":
            raise ValueError("propose.kind: the proposer writes the round's problems; controller.kind and "
                             "synthesize.kind draw from the pool and must be none")
        return self

    @model_validator(mode="after")
    def _objective_has_its_data(self) -> Params:
        if self.train.objective == "dpo" and self.filter.pairs is None:
            raise ValueError("filter.pairs: `train.objective: dpo` trains on preference pairs; set filter.pairs "
                             "(e.g. {rule: correct_vs_incorrect}) or use `recipe: iterative-dpo`")
        pairs, labels = self.filter.pairs, self.verify.labels
        if pairs is not None and pairs.rule == "judge_best_vs_worst":
            if pairs.scores == "judge" and labels != "judge":
                raise ValueError(f"filter.pairs.scores: judge_best_vs_worst ranks by the self-judge's scores, but "
                                 f"verify.labels is {labels} (no judge runs); set verify.labels: judge, or "
                                 "filter.pairs.scores: verifier to rank by the verifier as a stand-in judge")
            if pairs.scores == "verifier" and labels != "gold":
                raise ValueError(f"filter.pairs.scores: verifier ranks by the verifier against gold answers, but "
                                 f"verify.labels is {labels}")
        if pairs is not None and pairs.rule == "gold_vs_sample" and labels != "gold":
            raise ValueError(f"filter.pairs.rule: gold_vs_sample pairs the gold completion with the policy's samples; "
                             f"it needs verify.labels: gold (now {labels})")
        if self.train.objective != "dpo" and self.train.dpo is not None:
            raise ValueError(f"train.dpo: settings for `objective: dpo`, but the objective is {self.train.objective}")
        if self.train.objective != "grpo" and self.train.grpo is not None:
            raise ValueError(f"train.grpo: settings for `objective: grpo`, but the objective is {self.train.objective}")
        if self.train.objective == "grpo":
            g = self.train.grpo or GRPOParams()
            if self.train.batch_size % g.num_generations:
                raise ValueError(f"train.grpo.num_generations: {g.num_generations} must divide train.batch_size "
                                 f"({self.train.batch_size}): each batch holds whole groups")
            if g.rollouts == "online" and self.verify.labels == "judge":
                raise ValueError("train.grpo.rollouts: online GRPO rewards with the verifier (gold or majority labels); "
                                 "self-judged rewards need `rollouts: round` (the judge scores generate's samples)")
            if g.rollouts == "round":
                gen = self.generate
                if not gen.logprobs:
                    raise ValueError("generate.logprobs: `train.grpo.rollouts: round` needs the sampling policy's "
                                     "log-probabilities; set generate.logprobs: true")
                if gen.k != g.num_generations:
                    raise ValueError(f"train.grpo.num_generations: {g.num_generations}, but generate.k is {gen.k}; "
                                     "`rollouts: round` trains on generate's groups, so they must be equal")
                if gen.temperature == 0 and self.controller.kind != "bstar":
                    raise ValueError("generate.temperature: `rollouts: round` learns from sampled groups; greedy "
                                     "decoding (0) gives k copies of one answer")
                if self.train.init != "previous":
                    raise ValueError("train.init: `rollouts: round` updates the policy that sampled the round; "
                                     "set train.init: previous")
        return self

    @model_validator(mode="after")
    def _curriculum_draws(self) -> Params:
        if self.controller.kind == "sec" and self.generate.problems_per_round == 0:
            raise ValueError("generate.problems_per_round: the sec controller chooses which problems a round samples; "
                             "set how many (e.g. 64), less than the pool")
        return self

    @model_validator(mode="after")
    def _threshold_has_tau(self) -> Params:
        if self.filter.select == "threshold" and self.filter.tau is None and self.controller.kind != "bstar":
            raise ValueError("filter.tau: `select: threshold` needs a tau (or the b-star controller to choose one)")
        return self
