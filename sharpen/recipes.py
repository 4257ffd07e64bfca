"""Named methods as configuration of the shared stages: `recipe: star` in params.yaml picks one.

A recipe is a set of defaults laid under params.yaml: whatever the file sets wins, so any of a
recipe's parameters can be overridden. The method sections (`synthesize`, `controller`) belong
to the recipe: a file may tune the parameters its recipe has there, but not add others or
switch their `kind` (that would be a different recipe), so a typo or a leftover from another
recipe is an error instead of a silently ignored setting. Self-play's `propose` section is a
method section too. Specs and sources: shared/methods.md.

Run: `sharpen recipes` lists them with their parameters.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from sharpen.errors import SharpenError
from sharpen.params import ProposeParams

METHOD_SECTIONS = ("synthesize", "controller", "propose")


class RecipeError(SharpenError, ValueError):
    """An unknown recipe, or a parameter the chosen recipe does not take."""


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    defaults: dict
    on_default_task: str = ""  # what is approximated on the embedded tiny task, said plainly
    sources: str = ""


_NO_METHOD = {"synthesize": {"kind": "none"}, "controller": {"kind": "none"}}
# STaR's rationales are the task's scratchpad; the tiny base model learns to read hints from a
# share of hinted pretraining prompts (an LLM would take them from a few-shot prompt). The
# scratchpad is easier to learn than bare sums (350 steps: 99% greedy), so its base stops at 180
# steps: measured 48% greedy without a hint, 68% with one (seed 0).
_SCRATCHPAD = {
    "task": {"scratchpad": True},
    "base": {"hint_fraction": 0.5, "steps": 180},
    "generate": {"max_new_tokens": 40},
    "evaluate": {"max_new_tokens": 40},
}

# GRPO as DAPO runs it (loss, clip-higher, no KL), 20 optimizer steps a round; and the problem rule
# that keeps what GRPO can learn from (neither all right nor all wrong, as MASA / ReST-GRPO prefilter).
_GRPO_ONLINE = {"rollouts": "online", "steps": 200, "num_generations": 8, "max_completion_length": 8,
                "loss_type": "dapo", "beta": 0.0, "epsilon": 0.2, "epsilon_high": 0.28, "scale_rewards": "group"}
# RL moves a policy with small steps: at SFT's 2e-4, 20 GRPO steps took the tiny base from 27.6% to
# 3.2% greedy (Adam moves every weight by ~lr a step, however small the advantage); 2e-5 for 200
# steps was the best of 5e-6..1e-4 (28.4%), measured on 400 pool problems (RESULTS.md).
_RL_LR = 2e-5
# What made GRPO learn more here (RESULTS.md, the GRPO ablation: one round from the base, greedy on the 500
# held-out sums): more problems per step and more passes over them, at 1e-4. Online, 16 problems x 8
# completions a step for 200 steps: 29.0 -> 33.6; on the stored groups (no sampling in train), 3 passes
# at 16 problems a step: 30.0 -> 34.2 at 1e-4, 36.2 at SFT's 2e-4 (stored groups are a fixed set, like
# SFT's; online sampling at 2e-4 collapsed), and 42.2 with the negative half of the advantage off
# (negative_weight 0: pushing down wrong samples is what held the tiny policy back); rest-em: 42.4 (seed 0).
_GRPO_LR, _GRPO_BATCH, _REST_GRPO_LR = 1e-4, 128, 2e-4
# Self-play: the tiny base also learns to write a question after `?` (10% of pretraining), the
# solver answers each proposal 8 times with recorded log-probs and trains by GRPO on those groups.
_SELF_PLAY = {
    "base": {"propose_fraction": 0.1},
    "generate": {"k": 8, "logprobs": True, "temperature": 1.0},
    "train": {"objective": "grpo", "init": "previous", "lr": _RL_LR, "batch_size": 32,
              "grpo": {**_GRPO_ONLINE, "rollouts": "round", "steps": 20}},
}
_PROPOSER = {"prompts": 16, "group": 8, "steps": 20, "lr": 5e-5, "batch_size": 16, "prompt": "?", "examples": 3,
             "temperature": 1.0, "max_new_tokens": 12, "seed_examples": [],
             "repetition_weight": None}  # None: the kind's paper value (r-zero 1, absolute-zero 0)
_AZ_PROGRAMS = {"program": "expression", "timeout_s": 2.0, "max_output_chars": 32, "tasks": ["deduction"],
                **{key: ProposeParams.model_fields[key].default for key in ("question", "abduction_question",
                                                                            "induction_question")}}
# R-Zero's challenger and solver data: questions in the band p̂ in [0.3, 0.8], labelled by the majority
_R_ZERO = {"synthesize": {"kind": "none"}, "controller": {"kind": "none"},
           "propose": {**_PROPOSER, "kind": "r-zero", "repetition_threshold": 0.5},
           "verify": {"labels": "majority"},
           "filter": {"select": "correct", "cap": 10, "dedup": True,
                      "groups": [{"rule": "group_band", "lo": 0.3, "hi": 0.8}]}}
_R_ZERO_SCALED = ("the challenger is the tiny base, pretrained to write `a+b` after the marker `?` "
                  "(base.propose_fraction: 0.1; an LLM gets an instruction); questions are additions; the truth is "
                  "computed only to log pseudo-label accuracy and true difficulty")
_LEARNABLE = {"select": "correct", "cap": 10, "dedup": True, "groups": [{"rule": "group_band", "lo": 0.01, "hi": 0.99}]}

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe(
            "rest-em",
            "ReST-EM: keep correct samples (deduplicated, capped per problem), SFT from the base model each round.",
            {**_NO_METHOD, "verify": {"labels": "gold"},
             "filter": {"select": "correct", "cap": 10, "dedup": True, "groups": []},
             "train": {"init": "base"}},
            sources="Singh et al. 2023",
        ),
        Recipe(
            "star",
            "STaR: failed problems are regenerated with the answer as a hint; rationales that reach it are kept "
            "without the hint; SFT from base.",
            {**_SCRATCHPAD, "synthesize": {"kind": "rationalize", "rationalize": {"k": 1, "temperature": 0.0,
                                                                                 "max_new_tokens": 40}},
             "controller": {"kind": "none"}, "verify": {"labels": "gold"},
             "generate": {**_SCRATCHPAD["generate"], "k": 1, "temperature": 0.0},
             "filter": {"select": "correct", "cap": 1, "dedup": True, "groups": []},
             "train": {"init": "base"}},
            on_default_task="rationales are the task's scratchpad; the base model is pretrained with 50% hinted "
            "prompts so it can use a hint (an LLM would use a few-shot prompt); greedy decoding, one rationale each",
            sources="Zelikman et al. 2022",
        ),
        Recipe(
            "b-star",
            "B-STaR: each round a controller searches temperature and reward threshold on a dev subset for the best "
            "balance score; keep samples above the threshold; SFT from the previous policy.",
            {"synthesize": {"kind": "none"},
             "controller": {"kind": "bstar", "bstar": {"dev_size": 128, "k": 16,
                                                      "temperatures": [0.5, 0.75, 1.0, 1.25, 1.5],
                                                      "tau_step": 0.05, "n_star": 8}},
             "verify": {"labels": "gold"},
             "filter": {"select": "threshold", "tau": None, "cap": 10, "dedup": False, "groups": []},
             "train": {"init": "previous"}},
            on_default_task="the reward is the exact-answer verifier alone (no PRM), so tau only separates "
            "right from wrong; correct samples are counted with repeats, since an addition has one right answer",
            sources="hkust-nlp/B-STaR",
        ),
        Recipe(
            "sws",
            "SwS: a per-problem accuracy ledger finds weak problems; new problems are synthesized in their "
            "categories (budget by failure ratio) and admitted if their difficulty falls in a band; SFT from base.",
            {"synthesize": {"kind": "weakness", "weakness": {"max_acc_below": 0.5, "slope_max": 0.0, "budget": 256,
                                                            "k": 8, "temperature": 1.0, "band": [0.125, 0.875],
                                                            "synthesizer": "templated"}},
             "controller": {"kind": "none"}, "verify": {"labels": "gold"},
             "filter": {"select": "correct", "cap": 10, "dedup": True, "groups": []},
             "train": {"init": "base"}},
            on_default_task="problems are synthesized from templates of the weak problems' attributes (digit "
            "lengths, carries), not by an LLM; answers are computed, so answer agreement is trivially met; SFT, not GRPO",
            sources="MasterVito/SwS",
        ),
        Recipe(
            "iterative-dpo",
            "Iterative reasoning preference optimisation: per problem, a verified-correct sample against an "
            "incorrect one; DPO plus an NLL term on the chosen, from the previous policy (also the reference).",
            {**_NO_METHOD, "verify": {"labels": "gold"},
             "filter": {"select": "correct", "cap": 10, "dedup": True, "groups": [],
                        "pairs": {"rule": "correct_vs_incorrect", "max_per_problem": 1}},
             "train": {"objective": "dpo", "init": "previous", "dpo": {"beta": 0.1, "nll_weight": 1.0}}},
            on_default_task="completions are bare sums (no chain of thought): the pairs contrast a right and a "
            "wrong answer rather than two reasoning chains",
            sources="Pang et al. 2024 (Iterative Reasoning Preference Optimization)",
        ),
        Recipe(
            "spin",
            "SPIN: the gold completion against the policy's own sample (pairs where they agree dropped), DPO with "
            "the previous policy as reference and start; each round also trains on the previous round's pairs.",
            {**_NO_METHOD, "verify": {"labels": "gold"},
             "generate": {"k": 1, "temperature": 1.0},
             "filter": {"select": "correct", "cap": 10, "dedup": True, "groups": [],
                        "pairs": {"rule": "gold_vs_sample", "max_per_problem": 1, "mix_previous": True}},
             "train": {"objective": "dpo", "init": "previous", "dpo": {"beta": 0.1, "nll_weight": 0.0}}},
            on_default_task="the gold completion is the task's own answer string (a bare sum), not a human-written "
            "response; one sample per problem at temperature 1.0 as in the paper",
            sources="Chen et al. 2024 (uclaml/SPIN)",
        ),
        Recipe(
            "self-reward",
            "Self-Rewarding: the policy judges its own k samples with an additive 5-point rubric; the best-scored "
            "sample against the worst (ties dropped), DPO from the previous policy (also the reference).",
            {**_NO_METHOD, "verify": {"labels": "judge"},
             "generate": {"k": 4, "temperature": 0.7, "top_p": 0.9},
             "filter": {"select": "correct", "cap": 10, "dedup": True, "groups": [],
                        "pairs": {"rule": "judge_best_vs_worst", "max_per_problem": 1, "scores": "judge"}},
             "train": {"objective": "dpo", "init": "previous", "dpo": {"beta": 0.1, "nll_weight": 0.0}}},
            on_default_task="the tiny model cannot follow a rubric (its judgments are unparseable, so every sample "
            "ties and no pair is made); on it use the verifier as a labelled stand-in judge: `verify: {labels: gold}` "
            "and `filter: {pairs: {scores: verifier}}`. One judgment per sample, not the paper's mean of 3",
            sources="Yuan et al. 2024 (Self-Rewarding Language Models)",
        ),
        Recipe(
            "grpo",
            "GRPO, online: problems whose k samples are neither all right nor all wrong (group_band) are trained "
            "on by TRL's GRPOTrainer, the round's verifier as the reward, DAPO's loss and clip-higher, from the "
            "previous policy.",
            {**_NO_METHOD, "verify": {"labels": "gold"},
             "filter": _LEARNABLE,
             "train": {"objective": "grpo", "init": "previous", "lr": _GRPO_LR, "batch_size": _GRPO_BATCH,
                       "grpo": _GRPO_ONLINE}},
            on_default_task="the verifier's reward is exact (0 or 1); the generate stage's k samples only pick the "
            "learnable problems, the trainer samples its own groups",
            sources="Shao et al. 2024 (GRPO); Yu et al. 2025 (DAPO); MASA, ReST-GRPO (prefilter)",
        ),
        Recipe(
            "rest-grpo",
            "ReST-GRPO: problems whose k rewards vary (std > 0.05) are kept, and GRPO trains on exactly those "
            "groups as generate sampled and verify scored them (no sampling in train), the importance ratio "
            "against the recorded sampling log-probabilities clipped; from the previous policy. 3 passes over "
            "the groups, 16 problems a step, and only samples better than their group's mean move the policy.",
            {**_NO_METHOD, "verify": {"labels": "gold"},
             "generate": {"k": 8, "logprobs": True},
             "filter": {"select": "correct", "cap": 10, "dedup": True, "groups": [{"rule": "std_min", "eps": 0.05}]},
             "train": {"objective": "grpo", "init": "previous", "lr": _REST_GRPO_LR, "batch_size": _GRPO_BATCH,
                       "grpo": {**_GRPO_ONLINE, "rollouts": "round", "epochs": 3, "negative_weight": 0.0}}},
            on_default_task="the verifier's reward is exact (0 or 1), so std > 0.05 keeps every mixed group; "
            "the paper's prefix-guided rollouts for hard problems are not here; negative advantages are off "
            "(train.grpo.negative_weight: 0; the tiny policy lost accuracy from them, RESULTS.md), which makes the "
            "update close to reward-weighted SFT on the better samples",
            sources="ReST-GRPO (Zhang et al. 2025); Shao et al. 2024 (GRPO); Yu et al. 2025 (DAPO)",
        ),
        Recipe(
            "ttrl-grpo",
            "TTRL's RL step: no gold labels; problems whose k samples disagree are trained on by online GRPO, "
            "each group rewarded against its own majority answer; from the previous policy.",
            {**_NO_METHOD, "verify": {"labels": "majority"},
             "filter": _LEARNABLE,
             "train": {"objective": "grpo", "init": "previous", "lr": _RL_LR,
                       "grpo": _GRPO_ONLINE}},
            on_default_task="the majority is taken over each training group (8 samples), not over a larger "
            "voting set as in the paper (64 votes, 32 trained on); gold answers are read only to log label accuracy",
            sources="PRIME-RL/TTRL",
        ),
        Recipe(
            "r-zero",
            "R-Zero: a challenger (the proposer role) writes questions; the solver answers each m = generate.k "
            "times; p̂ = the majority answer's share. Questions with p̂ in [0.3, 0.8], labelled by majority vote, "
            "train the solver by GRPO on its own groups; the challenger is rewarded min(p̂, 1 − p̂) minus a "
            "repetition penalty (BLEU clusters), −1 if unparsable, and trained by GRPO. No gold answer is read.",
            {**_R_ZERO, **_SELF_PLAY},
            on_default_task=_R_ZERO_SCALED,
            sources="Huang et al. 2025, R-Zero (2508.05004)",
        ),
        Recipe(
            "r-zero-sft",
            "R-Zero with the solver trained by SFT instead of GRPO (an approximation the issue allows, labelled as "
            "such): the same challenger, band and majority pseudo-labels; the solver's in-band answers that agree "
            "with the majority (deduplicated, capped per question) are its SFT examples, from the previous policy.",
            {**_R_ZERO, **_SELF_PLAY,
             "train": {"objective": "sft", "init": "previous"}},
            on_default_task=_R_ZERO_SCALED + "; the solver's update is rest-em's SFT, not the paper's GRPO",
            sources="Huang et al. 2025, R-Zero (2508.05004); ReST-EM's SFT step (Singh et al. 2023)",
        ),
        Recipe(
            "absolute-zero",
            "Absolute Zero: the proposer writes a program, the sandbox runs it (twice: deterministic, "
            "time-limited, no I/O) and its value is the gold; invalid programs are rejected with the reason. The "
            "solver answers each task m times (deduction: the value; abduction: an input giving it; induction: the "
            "program, from half its input/output pairs), rewarded by running or checking its answer, and trains by "
            "GRPO on its own groups; "
            "the proposer is rewarded 1 − the solver's success rate (0 at 0 or 1), −1 if rejected.",
            {"synthesize": {"kind": "none"}, "controller": {"kind": "none"}, **_SELF_PLAY,
             "propose": {**_PROPOSER, **_AZ_PROGRAMS, "kind": "absolute-zero"},
             "verify": {"labels": "gold"},
             "filter": _LEARNABLE},
            on_default_task="a program is one Python expression over integer literals (deduction with no input), "
            "written by the tiny base after `?`, so only deduction (abduction and induction, `propose.tasks`, need "
            "`propose.program: function`); accepted tasks are kept in "
            "data/state/buffer.parquet and a prompt with `{examples}` shows some, but the tiny proposer's `?` shows none",
            sources="Zhao et al. 2025, Absolute Zero (2505.03335)",
        ),
        Recipe(
            "sec",
            "SEC: a curriculum controller picks each round's problems by category, softmax(Q / tau), where Q "
            "tracks each category's mean |advantage| (largest near 50% success); here with online GRPO, but "
            "usable with any objective (set train.objective).",
            {"synthesize": {"kind": "none"}, "controller": {"kind": "sec", "sec": {"alpha": 0.5, "tau": 0.5}},
             "verify": {"labels": "gold"},
             "generate": {"problems_per_round": 256},
             "filter": _LEARNABLE,
             "train": {"objective": "grpo", "init": "previous", "lr": _RL_LR,
                       "grpo": _GRPO_ONLINE}},
            on_default_task="categories are the operands' digit lengths ('2+3'); the arm reward uses the generate "
            "stage's k samples per problem (the paper uses the RL step's own rollouts)",
            sources="Chen et al. 2025, Self-Evolving Curriculum (2505.14970)",
        ),
        Recipe(
            "ttrl",
            "TTRL: no gold labels; each problem's majority answer over its k samples is the pseudo-label, and "
            "samples matching it are kept; SFT from base.",
            {**_NO_METHOD, "verify": {"labels": "majority"},
             "filter": {"select": "correct", "cap": 10, "dedup": True, "groups": []},
             "train": {"init": "base"}},
            on_default_task="the pseudo-labels train by ReST-EM-style SFT, not GRPO; the round never reads gold "
            "answers except to log pseudo-label accuracy",
            sources="PRIME-RL/TTRL",
        ),
    ]
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise RecipeError(f"recipe: unknown recipe {name!r}; allowed: {', '.join(repr(r) for r in RECIPES)}") from None


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} → {"a.b": 1}; lists are values."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _merge(base: dict, over: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve(raw: dict) -> dict:
    """params.yaml's mapping with its recipe's defaults laid underneath; RecipeError on a misfit."""
    recipe = get_recipe(raw.get("recipe", "rest-em"))
    raw = {k: ({} if v is None and k in recipe.defaults else v) for k, v in raw.items()}  # `filter:` alone = {}
    for section in METHOD_SECTIONS:
        given = raw.get(section)
        if given is None:
            continue
        if not isinstance(given, dict):
            raise RecipeError(f"{section}: expected a mapping, got {type(given).__name__}")
        takes = flatten(recipe.defaults.get(section, {}), f"{section}.")
        for key, value in flatten(given, f"{section}.").items():
            if not any(key == t or key.startswith(t + ".") or t.startswith(key + ".") for t in takes):
                owners = [r.name for r in RECIPES.values()
                          if any(t == key or t.startswith(key + ".") for t in flatten(r.defaults.get(section, {}), f"{section}."))]
                raise RecipeError(
                    f"{key}: recipe {recipe.name!r} does not take this parameter"
                    + (f" (recipes that do: {', '.join(owners)})" if owners else "")
                    + f"; {recipe.name!r} takes: {', '.join(takes) or 'nothing here'}"
                )
            if key.endswith(".kind") and value != takes.get(key):
                raise RecipeError(
                    f"{key}: recipe {recipe.name!r} uses {takes.get(key)!r}; {value!r} belongs to another recipe "
                    "(set `recipe:` instead)"
                )
    return _merge(recipe.defaults, raw)
