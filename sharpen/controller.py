"""Controllers: set a round's sampling before it generates. B-STaR's search is the one so far.

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
