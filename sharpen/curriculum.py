"""How a round samples, chosen before it generates: B-STaR's temperature and threshold search, or SEC's curriculum.

B-STaR (hkust-nlp/B-STaR, `determine_hyper.py`): on a dev subset, sample k completions at each
temperature, and for every (temperature, tau) score each query by its balance

    balance = min(n_correct / n_star, 1) * n_correct / n_selected

where the selected samples are those with reward > tau and n_correct counts the correct ones
among them (0 when nothing is selected). The pair with the highest mean balance wins; ties go to
the lower temperature, then the higher tau. Exploration (pass@k and distinct answers per query
at the chosen temperature) and exploitation (precision of the selected samples) are logged.

Differences from the paper, on purpose: the reward is the task's verifier (no PRM), and correct
samples are counted with repeats (the paper counts unique ones), because on an addition task
every correct completion of a problem is the same string and n_correct would be capped at 1.

SEC (self-evolving curriculum, 2505.14970): arms are problem categories. A round draws its
problems category by category with probabilities softmax(Q / tau), then uniformly inside a
category. After the round (`sharpen advance`), each drawn category's reward is the mean absolute
advantage of its samples, |reward - the problem's mean reward| (largest near 50% success: what
the policy can learn from now), and Q <- (1 - alpha) Q + alpha r for those categories. Q is
carried in data/state/controller.jsonl, so it is committed with each round.

Run: `python -m stages.controller ...` (DVC stage `controller`).
"""

from __future__ import annotations

import polars as pl


def taus(step: float) -> list[float]:
    """The thresholds swept: -1, -1+step, ... below 1."""
    n = int(round(2 / step))
    return [round(-1 + i * step, 6) for i in range(n)]


def balance_grid(verdicts: pl.DataFrame, *, tau_step: float, n_star: int) -> pl.DataFrame:
    """Mean balance, precision and selected count for every (temperature, tau).

    `verdicts`: one row per dev sample with `temperature`, `problem_id`, `reward`, `correct`.
    """
    queries = verdicts.select("temperature", "problem_id").unique()
    per_query = (
        verdicts.lazy()
        .join(pl.LazyFrame({"tau": taus(tau_step)}), how="cross")
        .filter(pl.col("reward") > pl.col("tau"))
        .group_by("temperature", "tau", "problem_id")
        .agg(n_selected=pl.len(), n_correct=pl.col("correct").sum())
        .collect()
    )
    full = queries.join(pl.DataFrame({"tau": taus(tau_step)}), how="cross").join(
        per_query, on=["temperature", "tau", "problem_id"], how="left"
    ).with_columns(pl.col("n_selected", "n_correct").fill_null(0))
    return (
        full.with_columns(
            balance=pl.when(pl.col("n_selected") > 0)
            .then(pl.min_horizontal(pl.col("n_correct") / n_star, pl.lit(1.0)) * pl.col("n_correct") / pl.col("n_selected"))
            .otherwise(0.0)
        )
        .group_by("temperature", "tau")
        .agg(
            balance=pl.col("balance").mean(),
            selected=pl.col("n_selected").sum(),
            correct_selected=pl.col("n_correct").sum(),
        )
        .with_columns(precision=pl.when(pl.col("selected") > 0).then(pl.col("correct_selected") / pl.col("selected")).otherwise(0.0))
        .sort("temperature", "tau")
    )


def choose(grid: pl.DataFrame) -> dict:
    """The (temperature, tau) with the best balance; ties: lower temperature, then higher tau."""
    best = grid.sort(["balance", "temperature", "tau"], descending=[True, False, True]).row(0, named=True)
    return {"temperature": float(best["temperature"]), "tau": float(best["tau"]), "balance": float(best["balance"]),
            "precision": float(best["precision"]), "selected": int(best["selected"])}


def exploration(verdicts: pl.DataFrame, temperature: float) -> dict:
    """pass@k and distinct answers per query at one temperature of the dev samples."""
    at = verdicts.filter(pl.col("temperature") == temperature)
    per_query = at.group_by("problem_id").agg(
        solved=pl.col("correct").any(), distinct=pl.col("extracted").drop_nulls().n_unique()
    )
    return {"pass_at_k": float(per_query["solved"].mean()), "distinct_answers": float(per_query["distinct"].mean())}


def arm_rewards(stats: pl.DataFrame) -> dict[str, float]:
    """SEC's reward per category: the mean |advantage| over the category's samples (ProblemStats rows)."""
    if stats.height == 0:
        return {}
    per = stats.group_by("category").agg(
        ((pl.col("mean_abs_advantage") * pl.col("n")).sum() / pl.col("n").sum()).alias("r"))
    return {c: float(r) for c, r in per.sort("category").iter_rows()}


def sec_update(q: dict[str, float], rewards: dict[str, float], alpha: float) -> dict[str, float]:
    """Q <- (1 - alpha) Q + alpha r for the categories the round drew; others keep their value."""
    return {c: (1 - alpha) * v + alpha * rewards[c] if c in rewards else v for c, v in q.items()}


def sec_probabilities(q: dict[str, float], tau: float) -> dict[str, float]:
    """softmax(Q / tau) over the categories, sorted by name."""
    import math

    top = max(q.values())
    weights = {c: math.exp((v - top) / tau) for c, v in sorted(q.items())}
    total = sum(weights.values())
    return {c: w / total for c, w in weights.items()}


def draw_by_category(pool: pl.DataFrame, probabilities: dict[str, float], n: int, seed: int) -> pl.DataFrame:
    """n problems (fewer if the pool runs out): each draw picks a category by `probabilities` (among
    those with problems left), then a problem of it uniformly, without replacement."""
    import random

    rng = random.Random(seed)
    left = {c: sorted(f["problem_id"].to_list()) for (c,), f in pool.group_by("category")}
    for category in sorted(left):
        rng.shuffle(left[category])
    chosen: list[str] = []
    while len(chosen) < n:
        open_ = [c for c in sorted(left) if left[c] and probabilities.get(c, 0) > 0]
        if not open_:
            break
        category = rng.choices(open_, weights=[probabilities[c] for c in open_])[0]
        chosen.append(left[category].pop())
    return pool.filter(pl.col("problem_id").is_in(chosen)).sort("problem_id")
