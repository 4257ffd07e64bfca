"""Evaluation metrics: greedy accuracy, unbiased pass@k, maj@k, overall and per category.

Computed from an `EvalSample` frame (sample_idx -1 = the greedy decode, 0..k-1 = samples).
"""

from __future__ import annotations

from collections.abc import Callable
from math import comb

import polars as pl


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al. 2021): 1 - C(n-c,k)/C(n,k).

    >>> pass_at_k(2, 1, 1), pass_at_k(4, 0, 2), pass_at_k(4, 3, 2)
    (0.5, 0.0, 1.0)
    """
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1, got n={n} c={c} k={k}")
    if k > n:
        raise ValueError(f"pass_at_k: k={k} exceeds the n={n} samples")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority_correct(samples: pl.DataFrame, vote: Callable[[list], list] | None = None) -> pl.DataFrame:
    """Per problem: is the most frequent extracted answer (ties: earliest sample) correct?

    `vote` maps extracted answers to the keys they vote under (`sharpen.verifiers.vote_keys`), so
    equal values written differently count together; without it answers vote as written."""
    sampled = samples.filter(pl.col("sample_idx") >= 0)
    keys = vote(sampled["extracted"].to_list()) if vote else sampled["extracted"].to_list()
    votes = (
        sampled.lazy()
        .with_columns(extracted=pl.Series(keys, dtype=pl.String))
        .group_by("problem_id", "extracted")
        .agg(votes=pl.len(), first=pl.col("sample_idx").min(), correct=pl.col("correct").any())
        .with_columns(votes=pl.when(pl.col("extracted").is_null()).then(0).otherwise(pl.col("votes")))
        .sort(["problem_id", "votes", "first"], descending=[False, True, False])
        .group_by("problem_id", maintain_order=True)
        .first()
        .select("problem_id", maj_correct=pl.col("correct") & (pl.col("votes") > 0))
    )
    return votes.collect()


def per_problem(samples: pl.DataFrame, pass_k: tuple[int, ...], vote: Callable[[list], list] | None = None) -> pl.DataFrame:
    """One row per problem: greedy correctness, n, c, pass@k for each k, majority correctness (`vote`: see majority_correct)."""
    counts = (
        samples.lazy()
        .group_by("problem_id", "category")
        .agg(
            greedy=pl.col("correct").filter(pl.col("sample_idx") == -1).any(),
            n=(pl.col("sample_idx") >= 0).sum(),
            c=pl.col("correct").filter(pl.col("sample_idx") >= 0).sum(),
        )
        .collect()
    )
    for k in pass_k:
        counts = counts.with_columns(
            pl.struct("n", "c")
            .map_elements(lambda s, k=k: pass_at_k(s["n"], s["c"], k), return_dtype=pl.Float64)
            .alias(f"pass@{k}")
        )
    return counts.join(majority_correct(samples, vote), on="problem_id", how="left").sort("problem_id")


def summarize(problems: pl.DataFrame, pass_k: tuple[int, ...], k: int) -> dict[str, float]:
    exprs = [pl.col("greedy").cast(pl.Float64).mean().alias("greedy_accuracy")]
    exprs += [pl.col(f"pass@{p}").mean().alias(f"pass@{p}") for p in pass_k]
    exprs += [pl.col("maj_correct").cast(pl.Float64).mean().alias(f"maj@{k}"), pl.len().alias("problems")]
    return problems.select(exprs).row(0, named=True)


def by_category(problems: pl.DataFrame, pass_k: tuple[int, ...], k: int) -> pl.DataFrame:
    exprs = [pl.col("greedy").cast(pl.Float64).mean().alias("greedy_accuracy")]
    exprs += [pl.col(f"pass@{p}").mean().alias(f"pass@{p}") for p in pass_k]
    exprs += [pl.col("maj_correct").cast(pl.Float64).mean().alias(f"maj@{k}"), pl.len().alias("problems")]
    return problems.group_by("category").agg(exprs).sort("category")


def form_monitors(samples: pl.DataFrame, lenient_ok: Callable[[list[str], list[str]], list[bool]] | None,
                  answers: pl.DataFrame) -> dict[str, float]:
    """How much a form-blind reward would have paid for answers that are not answers (greedy decodes).

    `greedy_lenient_accuracy`: greedy accuracy if restated, unevaluated or multiple answers whose
    value is right counted (what math-verify alone rewards); `greedy_form_hack_share`: of those
    rewarded greedy answers, the share that only the form-blind reward accepts. A policy learning
    to restate its questions shows as the share rising while `greedy_accuracy` falls.
    `answers`: problem_id → answer (gold). `lenient_ok`: the verifier's form-blind check (None:
    the verifier has no such notion, nothing is counted).
    """
    from sharpen.errors import ArtifactError
    from sharpen.verifiers.answers import FORM_REASONS
    from sharpen.verifiers.result import UnreadableReference

    greedy = samples.filter(pl.col("sample_idx") == -1)
    n = max(greedy.height, 1)
    correct = int(greedy["correct"].sum())
    rejected = greedy.filter(pl.col("reason").is_in(FORM_REASONS)) if "reason" in greedy.columns else greedy.clear()
    hacked = 0
    if lenient_ok is not None and rejected.height:
        rejected = rejected.join(answers, on="problem_id", how="left")
        golds = rejected["answer"].to_list()
        try:
            hacked = sum(lenient_ok(rejected["completion"].to_list(), golds))
        except UnreadableReference as e:  # named like verify_frame names it
            pid = next((p for p, g in zip(rejected["problem_id"], golds, strict=True) if g == e.reference), None)
            raise ArtifactError(f"problem {pid!r}: {e}. Fix that problem's answer where it comes from (task.path's "
                                "file, or the task) and rerun `dvc repro`") from None
    return {
        "greedy_lenient_accuracy": (correct + hacked) / n,
        "greedy_form_hack_share": hacked / (correct + hacked) if correct + hacked else 0.0,
        "greedy_form_rejected": rejected.height / n,
    }


SMALL_ANSWER_SPACE = 10  # at most this many distinct gold answers: guessing among them is reported too


def chance_baselines(answers: list[str], pass_k: tuple[int, ...]) -> dict[str, float]:
    """What answering without reading the question scores on these gold answers.

    `chance_accuracy`: always giving the most common gold answer (52% on a True/False set that is
    52% True). Where the answer space is small (at most `SMALL_ANSWER_SPACE` distinct gold answers,
    m of them), `chance_pass@k`: the expected pass@k of k guesses drawn uniformly from them,
    1 - (1 - 1/m)^k, which is how pass@k "rises" on a small answer space without learning anything.

    >>> chance_baselines(["True", "True", "False", "True"], (1, 4))
    {'chance_accuracy': 0.75, 'chance_pass@1': 0.5, 'chance_pass@4': 0.9375}
    """
    golds = [a.strip() for a in answers]
    if not golds:
        return {"chance_accuracy": 0.0}
    counts = pl.Series(golds, dtype=pl.String).value_counts(sort=True)
    out = {"chance_accuracy": counts["count"][0] / len(golds)}
    if counts.height <= SMALL_ANSWER_SPACE:
        out |= {f"chance_pass@{k}": 1 - (1 - 1 / counts.height) ** k for k in pass_k}
    return out


def agreement_monitors(samples: pl.DataFrame, vote: Callable[[list], list] | None = None) -> dict[str, float]:
    """What the policy's own answers say about it, with no gold answer read (a label-free run can watch
    these): `self_consistency`, the mean share of a problem's k samples that give its most common
    answer (an unreadable answer gives none); `answer_entropy`, the mean entropy in bits of a problem's
    sampled answers (unreadable counted as one answer); `greedy_distinct_share`, distinct greedy
    answers over problems (a policy that answers everything alike scores near 0).

    A policy rewarded for agreeing with itself (TTRL's majority labels) collapses with
    self-consistency rising and the greedy answers losing their variety while accuracy falls;
    `sharpen.rounds`' collapse rule reads them (advance.reject_collapse).

    >>> s = pl.DataFrame({"problem_id": ["a"] * 5 + ["b"] * 5, "sample_idx": [-1, 0, 1, 2, 3] * 2,
    ...                   "extracted": ["1", "1", "1", "2", None, "3", "3", "3", "3", "3"]})
    >>> agreement_monitors(s)
    {'self_consistency': 0.75, 'answer_entropy': 0.75, 'greedy_distinct_share': 1.0}
    """
    from math import log2

    sampled = samples.filter(pl.col("sample_idx") >= 0)
    greedy = samples.filter(pl.col("sample_idx") == -1)
    keys = vote(sampled["extracted"].to_list()) if vote else sampled["extracted"].to_list()
    counts = (sampled.select("problem_id").with_columns(key=pl.Series(keys, dtype=pl.String))
              .group_by("problem_id", "key").agg(n=pl.len()))
    consistency, entropy = [], []
    for _, group in counts.group_by("problem_id"):
        total = int(group["n"].sum())
        readable = group.filter(pl.col("key").is_not_null())["n"]
        consistency.append((int(readable.max()) if readable.len() else 0) / total)
        entropy.append(-sum(c / total * log2(c / total) for c in group["n"].to_list()))
    answers = greedy["extracted"].to_list()
    greedy_keys = vote(answers) if vote else answers
    distinct = len({k for k in greedy_keys if k is not None})
    return {
        "self_consistency": sum(consistency) / len(consistency) if consistency else 0.0,
        "answer_entropy": sum(entropy) / len(entropy) if entropy else 0.0,
        "greedy_distinct_share": distinct / greedy.height if greedy.height else 0.0,
    }
