"""Verifiers: plain functions with one signature, a batch in and one result per item out.

    verifier(completions: Sequence[str], references: Sequence[str | None]) -> list[VerifyResult]

The same function scores samples for the filter and for evaluation. Later verifiers (math
equivalence, unit tests in the sandbox, majority vote, self-judge) are added to VERIFIERS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple


class VerifyResult(NamedTuple):
    extracted: str | None  # the answer read from the completion; None if none could be read
    reward: float  # in [0, 1]
    correct: bool
    reason: str  # one of sharpen.schemas.VERDICT_REASONS


Verifier = Callable[[Sequence[str], Sequence[str | None]], list[VerifyResult]]

from sharpen.verifiers.exact import exact_integer  # noqa: E402

VERIFIERS: dict[str, Verifier] = {"exact_integer": exact_integer}


def get_verifier(name: str) -> Verifier:
    try:
        return VERIFIERS[name]
    except KeyError:
        raise ValueError(f"verify.verifier: unknown verifier {name!r}; allowed: {', '.join(VERIFIERS)}") from None


def verify_frame(samples, problems, verifier_name: str):
    """`Verdict` rows for a `Sample` frame, scored against the problems' gold answers."""
    import polars as pl

    from sharpen.io import ArtifactError

    joined = samples.join(problems.select("problem_id", "answer"), on="problem_id", how="left")
    missing = joined.filter(pl.col("answer").is_null())["problem_id"].unique().to_list()
    if missing:
        raise ArtifactError(f"verify: samples name problems missing from the problem file: {missing[:5]}")
    results = get_verifier(verifier_name)(joined["completion"].to_list(), joined["answer"].to_list())
    return pl.DataFrame(
        {
            "round": joined["round"],
            "problem_id": joined["problem_id"],
            "sample_idx": joined["sample_idx"],
            "extracted": pl.Series([r.extracted for r in results], dtype=pl.String),
            "reward": pl.Series([r.reward for r in results], dtype=pl.Float64),
            "correct": pl.Series([r.correct for r in results], dtype=pl.Boolean),
            "reason": [r.reason for r in results],
            "verifier": pl.Series([verifier_name] * joined.height, dtype=pl.String),
        }
    ).sort("problem_id", "sample_idx")
