"""Synthesis: extra training data aimed at what the policy fails (the `synthesize` stage).

Two kinds, picked by the recipe:
- STaR rationalization (`rationalize_prompts`): a failed problem's prompt with the gold answer
  as a hint; the stage keeps rationales that reach the answer, stored with the plain prompt.
- SwS weakness synthesis: `weaknesses` reads the per-problem ledger (accuracy per round, best
  accuracy, least-squares trend slope), `category_budget` splits the round's budget by each
  category's failure ratio, and a synthesizer writes candidate problems in those categories.
  The stage admits a candidate only if its answer verifies and the current policy's pass rate on
  it falls in the configured band.

Synthesizers share one signature, `(weak, budget, rng, exclude) -> candidates` (Problem columns
plus `source_id`):
- `templated` (the embedded task): new problems with a weak problem's attributes, its operand
  digit lengths and number of carries. A stand-in for SwS's LLM pipeline, and labelled as one.
- `LLMSynthesizer`: SwS's pipeline with a real model: concept extraction, problem writing, then
  answer agreement over sampled answers (keep if the top answer has at least `min_agree` votes).
  It needs an instruct model, so it runs with the real-model presets, not the tiny default.

Run: `python -m stages.synthesize ...` (DVC stage `synthesize`).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import polars as pl

from sharpen.io import hash_json

CANDIDATE_SCHEMA = {"problem_id": pl.String, "prompt": pl.String, "answer": pl.String, "category": pl.String,
                    "source_id": pl.String}


def rationalize_prompts(failed: pl.DataFrame, hinted_prompt: Callable[[str, str], str]) -> list[str]:
    """The hinted prompts for STaR's rationalization of `failed` problems (Problem rows)."""
    return [hinted_prompt(p, a) for p, a in zip(failed["prompt"], failed["answer"], strict=True)]


def weaknesses(ledger: pl.DataFrame, *, max_acc_below: float, slope_max: float) -> pl.DataFrame:
    """Per problem in the ledger: rounds seen, best accuracy, trend slope, and whether it is weak.

    Weak: best accuracy < `max_acc_below` and slope <= `slope_max` (SwS: 0.5 and < 0; its
    failure records also hold slope 0, so the slope bound is inclusive and configurable).
    A problem seen in one round has slope 0.
    """
    x, y = pl.col("round").cast(pl.Float64), pl.col("pass_rate")
    return (
        ledger.group_by("problem_id")
        .agg(
            category=pl.col("category").last(),
            rounds=pl.len(),
            best=y.max(),
            last=y.sort_by("round").last(),
            sxy=((x - x.mean()) * (y - y.mean())).sum(),
            sxx=((x - x.mean()) ** 2).sum(),
        )
        .with_columns(slope=pl.when(pl.col("sxx") > 0).then(pl.col("sxy") / pl.col("sxx")).otherwise(0.0))
        .with_columns(weak=(pl.col("best") < max_acc_below) & (pl.col("slope") <= slope_max))
        .select("problem_id", "category", "rounds", "best", "last", "slope", "weak")
        .sort("problem_id")
    )


def category_budget(weak: pl.DataFrame, budget: int) -> dict[str, int]:
    """Split `budget` over categories in proportion to their failure ratio (weak / seen).

    Largest remainders get the leftover units, so the parts sum to `budget` (when any category
    has a weak problem; none has → {}).
    """
    ratios = weak.group_by("category").agg(ratio=pl.col("weak").mean()).filter(pl.col("ratio") > 0).sort("category")
    if ratios.height == 0 or budget == 0:
        return {}
    total = ratios["ratio"].sum()
    shares = [(c, budget * r / total) for c, r in ratios.iter_rows()]
    parts = {c: int(s) for c, s in shares}
    leftover = budget - sum(parts.values())
    for c, s in sorted(shares, key=lambda cs: (-(cs[1] - int(cs[1])), cs[0]))[:leftover]:
        parts[c] += 1
    return {c: n for c, n in parts.items() if n > 0}


def admit(candidates: pl.DataFrame, verdicts: pl.DataFrame, band: tuple[float, float]) -> pl.DataFrame:
    """Candidates with the policy's pass rate on them and `admitted` = pass rate in [lo, hi].

    SwS's difficulty filter: too easy teaches nothing, too hard gives no correct sample.
    """
    lo, hi = band
    rates = verdicts.group_by("problem_id").agg(pass_rate=pl.col("correct").cast(pl.Float64).mean())
    return (
        candidates.join(rates, on="problem_id", how="left")
        .with_columns(pl.col("pass_rate").fill_null(0.0))
        .with_columns(admitted=pl.col("pass_rate").is_between(lo, hi))
        .sort("problem_id")
    )


Synthesizer = Callable[[pl.DataFrame, dict[str, int], random.Random, set[str]], pl.DataFrame]


def templated(similar: Callable[[str, random.Random], tuple[str, str, str, str]]) -> Synthesizer:
    """A synthesizer that makes each candidate from a weak problem of its category by template.

    `similar(problem_id, rng)` → (problem_id, prompt, answer, category) of a new problem with the
    same attributes (the task defines which; arithmetic: digit lengths and carries).
    """

    def synthesize(weak: pl.DataFrame, budget: dict[str, int], rng: random.Random, exclude: set[str]) -> pl.DataFrame:
        rows = []
        seen = set(exclude)
        for category, n in sorted(budget.items()):
            sources = weak.filter(pl.col("weak") & (pl.col("category") == category))["problem_id"].sort().to_list()
            made, tries = 0, 0
            while sources and made < n and tries < 50 * n:
                tries += 1
                source = rng.choice(sources)
                pid, prompt, answer, cat = similar(source, rng)
                if pid in seen:
                    continue
                seen.add(pid)
                rows.append({"problem_id": pid, "prompt": prompt, "answer": answer, "category": cat, "source_id": source})
                made += 1
        return pl.DataFrame(rows, schema=CANDIDATE_SCHEMA).sort("problem_id")

    return synthesize


CONCEPT_PROMPT = (
    "List the mathematical concepts a student must master to solve this problem, one per line.\n"
    "Problem: {problem}\nConcepts:"
)
PROBLEM_PROMPT = (
    "Write one new, self-contained problem in the category '{category}' that exercises these concepts:\n"
    "{concepts}\nGive only the problem statement.\nProblem:"
)


class LLMSynthesizer:
    """SwS's synthesis with a real model: concepts of a weak problem → a new problem → answer agreement.

    `generate(prompts, n, temperature) -> list[list[str]]` is any backend's text generation;
    `extract(completions) -> list[str | None]` reads answers (a verifier scored with no reference).
    A candidate is kept only if its most common sampled answer has at least `min_agree` of `votes`.
    """

    def __init__(self, generate, extract, *, votes: int = 8, min_agree: int = 4, temperature: float = 0.6):
        self.generate, self.extract = generate, extract
        self.votes, self.min_agree, self.temperature = votes, min_agree, temperature

    def __call__(self, weak: pl.DataFrame, budget: dict[str, int], rng: random.Random, exclude: set[str],
                 prompts: dict[str, str] | None = None) -> pl.DataFrame:
        prompts = prompts or {}
        sources: list[tuple[str, str]] = []
        for category, n in sorted(budget.items()):
            ids = weak.filter(pl.col("weak") & (pl.col("category") == category))["problem_id"].sort().to_list()
            sources += [(rng.choice(ids), category) for _ in range(n)] if ids else []
        if not sources:
            return pl.DataFrame(schema=CANDIDATE_SCHEMA)
        concept_in = [CONCEPT_PROMPT.format(problem=prompts.get(pid, pid)) for pid, _ in sources]
        concepts = [outs[0] for outs in self.generate(concept_in, 1, 0.0)]
        problem_in = [PROBLEM_PROMPT.format(category=c, concepts=k.strip()) for (_, c), k in zip(sources, concepts)]
        problems = [outs[0].strip() for outs in self.generate(problem_in, 1, self.temperature)]
        answers = self.generate(problems, self.votes, self.temperature)
        rows = []
        for (source, category), problem, outs in zip(sources, problems, answers, strict=True):
            votes = Counter(a for a in self.extract(outs) if a is not None)
            if not problem or not votes:
                continue
            answer, count = votes.most_common(1)[0]
            pid = "syn-" + hash_json([problem, answer])[:12]
            if count >= self.min_agree and problem not in exclude and pid not in exclude:
                rows.append({"problem_id": pid, "prompt": problem, "answer": answer, "category": category,
                             "source_id": source})
        return pl.DataFrame(rows, schema=CANDIDATE_SCHEMA).unique("problem_id", keep="first").sort("problem_id")
