"""From problems to sample frames: which problems a round samples, and completions as long-format rows.

Used by the generate and evaluate stages (and the round benchmark), so both write the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from sharpen.backends import Completion
from sharpen.io import hash_json


def derive_seed(*parts) -> int:
    """A 32-bit seed from any JSON-able parts: the same parts give the same seed on every machine."""
    return int(hash_json(list(parts))[:8], 16)


def select_problems(pool: pl.DataFrame, per_round: int, seed: int, round_: int) -> pl.DataFrame:
    """The round's problems: the whole pool, or `per_round` of them drawn afresh each round."""
    if per_round == 0 or per_round >= pool.height:
        return pool
    return pool.sample(per_round, seed=derive_seed(seed, round_)).sort("problem_id")


def _long(problems: pl.DataFrame, completions: Sequence[Sequence[Completion]], first_idx: int = 0) -> dict:
    rows: dict[str, list] = {k: [] for k in ("problem_id", "sample_idx", "completion", "num_tokens", "finish_reason")}
    for pid, outs in zip(problems["problem_id"], completions, strict=True):
        for i, c in enumerate(outs, start=first_idx):
            rows["problem_id"].append(pid)
            rows["sample_idx"].append(i)
            rows["completion"].append(c.text)
            rows["num_tokens"].append(c.num_tokens)
            rows["finish_reason"].append(c.finish_reason)
    return rows


def sample_frame(
    problems: pl.DataFrame, completions: Sequence[Sequence[Completion]], *, round_: int, policy_hash: str,
    temperature: float,
) -> pl.DataFrame:
    """`Sample` rows: one per completion, in problem order then sample order; with the token ids and
    per-token log-probabilities where the backend recorded them (`generate.logprobs`)."""
    df = pl.DataFrame(_long(problems, completions), schema_overrides={"sample_idx": pl.Int64, "num_tokens": pl.Int64})
    tokens = []
    if any(c.logprobs is not None for outs in completions for c in outs):
        flat = [c for outs in completions for c in outs]
        tokens = [pl.Series("token_ids", [list(c.token_ids) for c in flat], dtype=pl.List(pl.Int64)),
                  pl.Series("logprobs", [list(c.logprobs) for c in flat], dtype=pl.List(pl.Float64))]
    return df.with_columns(tokens).join(
        problems.select("problem_id", "prompt"), on="problem_id", how="left", maintain_order="left"
    ).select(
        pl.lit(round_, pl.Int64).alias("round"), "problem_id", "sample_idx", "prompt", "completion", "num_tokens",
        "finish_reason", pl.lit(policy_hash).alias("policy_hash"), pl.lit(float(temperature)).alias("temperature"),
        *[t.name for t in tokens],
    )


EvalKey = tuple[int, str]  # (shard index, "greedy" | "sampled")


def eval_shard_size(problems: int, shard_size: int) -> int:
    """Problems per evaluation shard: `shard_size`, or all of them (0)."""
    return shard_size or max(1, problems)


def eval_requests(
    prompts: Sequence[str], *, shard_size: int, k: int, temperature: float, top_p: float, max_new_tokens: int, seed: int,
) -> list[tuple[EvalKey, list[str], dict]]:
    """The backend calls an evaluation makes, as (key, prompts, sampling): per shard of `shard_size`
    prompts (0: one shard), the greedy decode and k samples. Shard 0 samples with `seed` itself (so one
    shard is the unsharded evaluation), shard i with a seed derived from it; each call is the same
    wherever it runs (this process, or a Ray actor), so the samples are too."""
    size = eval_shard_size(len(prompts), shard_size)
    requests = []
    for i, start in enumerate(range(0, len(prompts), size)):
        chunk, shard_seed = list(prompts[start:start + size]), seed if i == 0 else derive_seed(seed, "shard", i)
        requests.append(((i, "greedy"), chunk, {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_new_tokens": max_new_tokens,
                                                "seed": shard_seed}))
        requests.append(((i, "sampled"), chunk, {"n": k, "temperature": temperature, "top_p": top_p,
                                                 "max_new_tokens": max_new_tokens, "seed": shard_seed}))
    return requests


def eval_draws(problems: pl.DataFrame, made: Mapping[EvalKey, Sequence[Sequence[Completion]]], *, round_: int) -> pl.DataFrame:
    """`EvalDraw` rows, not yet verified: the greedy decode (sample_idx -1) and k samples per problem;
    `made` holds every shard's completions (`eval_requests`' keys), in any order."""
    shards = sorted({i for i, _ in made})
    greedy = [row for i in shards for row in made[(i, "greedy")]]
    sampled = [row for i in shards for row in made[(i, "sampled")]]
    rows = _long(problems, greedy, first_idx=-1)
    more = _long(problems, sampled)
    for key in rows:
        rows[key] += more[key]
    return pl.DataFrame(rows, schema_overrides={"sample_idx": pl.Int64}).select(
        pl.lit(round_, pl.Int64).alias("round"), "problem_id", "sample_idx", "completion",
    ).sort("problem_id", "sample_idx")


def verified_eval_frame(draws: pl.DataFrame, problems: pl.DataFrame, verifier_name: str, answer_form: str = "auto") -> pl.DataFrame:
    """`EvalSample` rows: the drawn held-out completions scored exactly as the verify stage scores a
    round's samples (`verify_frame`: the verifier's own reference, a problem's own verifier where it
    names one), so evaluation can never read a reference differently from training."""
    from sharpen.verifiers import verify_frame

    frame = draws.join(problems.select("problem_id", "prompt", "category"), on="problem_id", how="left",
                       maintain_order="left")
    verdicts = verify_frame(frame, problems, verifier_name, answer_form=answer_form)
    return frame.join(verdicts.select("problem_id", "sample_idx", "extracted", "correct", "reason"),
                      on=["problem_id", "sample_idx"], how="left", maintain_order="left").select(
        "round", "problem_id", "category", "sample_idx", "completion", "extracted", "correct", "reason",
    ).sort("problem_id", "sample_idx")
