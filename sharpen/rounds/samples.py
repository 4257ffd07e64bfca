"""The answers behind a round's numbers, for the report: seeded samples of what the verifier rewarded
and rejected (by its reason), what the filter kept, and the held-out problems a round newly solved
or newly failed, with both rounds' answers.

Groups (`group`, and the verifier's `reason` on every row):
- `rewarded greedy` / `rejected greedy`: the held-out greedy answers (evaluate's samples.parquet);
- `kept`: the round's training samples the filter kept (filter/decisions.parquet);
- `rejected`: the round's training samples the verifier did not reward (verify/verdicts.parquet).
A sample the filter kept although the verifier rejected it (`select: all`) is in both.

Each group is sampled to at most `per_group` rows by a seeded hash of (problem_id, sample_idx), so the
same artifacts and seed always give the same rows, whatever order the files hold them in. Rows are read
from each round's DVC-tracked outputs at its tag (the workspace for the round not yet advanced), like
`sharpen diff`; the completions are read for the chosen rows only, streamed.

Run: `sharpen report` (sharpen/rounds/report.py) shows them.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from sharpen.errors import ArtifactError
from sharpen.rounds.layout import (
    BASE_EVAL_METRICS,
    BASE_EVAL_SAMPLES,
    EVAL_PROBLEMS,
    ROUND_DECISIONS,
    ROUND_EVAL_SAMPLES,
    ROUND_METRICS,
    ROUND_PROBLEMS,
    ROUND_SAMPLES,
    ROUND_VERDICTS,
)

PER_GROUP = 50  # rows shown per group and round
SEED = 0
TEXT_HEAD, TEXT_TAIL = 1000, 2000  # a long text keeps its start and its end (where the final answer is)
GROUPS = ("rewarded greedy", "rejected greedy", "kept", "rejected")
COLUMNS = {"group": pl.String, "reason": pl.String, "category": pl.String, "problem_id": pl.String,
           "sample_idx": pl.Int64, "prompt": pl.String, "completion": pl.String, "extracted": pl.String,
           "gold": pl.String, "label": pl.String}
CHANGES = ("newly solved", "newly failed")


@dataclass(frozen=True)
class RoundRef:
    """A row of the rounds table as a place to read from: `rev` the git revision holding its files
    (None: the workspace), `advanced` False for the round `sharpen advance` has not tagged yet."""

    round: int
    rev: str | None
    label: str
    advanced: bool = True

    @property
    def eval_samples(self) -> Path:
        return BASE_EVAL_SAMPLES if self.round == 0 else ROUND_EVAL_SAMPLES

    @property
    def eval_metrics(self) -> Path:
        return BASE_EVAL_METRICS if self.round == 0 else ROUND_METRICS


def round_refs(rows: list[dict], tags: list[tuple[int, str]]) -> list[RoundRef]:
    """Where each row of `rounds_table()` reads from: the base at the first tag (as rounds_table
    reads it), each tagged round at its tag, the round not advanced yet in the workspace."""
    refs = []
    for row in rows:
        if row["tag"] == "base":
            refs.append(RoundRef(0, tags[0][1] if tags else None, "base"))
        elif row["tag"].startswith("round-"):
            refs.append(RoundRef(row["round"], row["tag"], row["tag"]))
        else:
            refs.append(RoundRef(row["round"], None, row["tag"], advanced=False))
    return refs


# --- reading ---------------------------------------------------------------------------------------


def _open(rev: str | None, path: Path):
    return open(path, "rb") if rev is None else _dvc_fs(os.getcwd(), rev).open(str(path), "rb")


@functools.lru_cache(maxsize=8)
def _dvc_fs(repo: str, rev: str):
    from dvc.api import DVCFileSystem

    return DVCFileSystem(repo, rev=rev)


def columns_at(rev: str | None, path: Path, schema, *columns: str) -> pl.DataFrame | None:
    """`columns` of a Parquet artifact at `rev` (None: the workspace), validated; None if the round has
    no such file; ArtifactError naming the file if DVC's cache lacks it."""
    from sharpen.io import validate, validate_columns

    where = f"{path} at {rev}" if rev else str(path)
    try:
        with _open(rev, path) as f:
            validate(pl.DataFrame(schema=pl.read_parquet_schema(f)), schema, where)
            f.seek(0)
            df = pl.read_parquet(f, columns=list(columns))
    except FileNotFoundError:
        if rev is None:
            return None
        if not _declared(rev, path):
            return None  # the round had no such output
        raise ArtifactError(f"{where}: not in the local DVC cache (run `dvc pull` or `dvc fetch`)") from None
    except ArtifactError:
        raise
    except Exception as e:  # a damaged file
        raise ArtifactError(f"{where}: not a readable Parquet file: {e}") from None
    return validate_columns(df, schema, where)


def _declared(rev: str, path: Path) -> bool:
    from sharpen.rounds.lineage import yaml_at

    lock = yaml_at(rev, "dvc.lock").get("stages", {})
    return any(o.get("path") == str(path) for entry in lock.values() for o in entry.get("outs", []))


def texts_at(rev: str | None, path: Path, keys: pl.DataFrame) -> pl.DataFrame:
    """prompt and completion of the samples `keys` (problem_id, sample_idx) names, streamed from a
    Sample file: only the chosen rows are held."""
    import pyarrow.parquet as pq

    found = []
    with _open(rev, path) as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=65536,
                                                    columns=["problem_id", "sample_idx", "prompt", "completion"]):
            part = pl.from_arrow(batch).join(keys, on=["problem_id", "sample_idx"], how="semi")
            if part.height:
                found.append(part)
    schema = {"problem_id": pl.String, "sample_idx": pl.Int64, "prompt": pl.String, "completion": pl.String}
    return pl.concat(found) if found else pl.DataFrame(schema=schema)


# --- choosing --------------------------------------------------------------------------------------


def choose(frame: pl.DataFrame, n: int = PER_GROUP, seed: int = SEED, by: str = "group") -> pl.DataFrame:
    """At most `n` rows of each `by` group: those with the smallest seeded hash of (problem_id,
    sample_idx), so the choice depends on the rows and the seed only, never on their order. Sorted by
    group, then problem_id and sample_idx."""
    if frame.height == 0:
        return frame
    keys = frame.select(pl.format("{}:{}:{}", pl.lit(str(seed)), "problem_id", "sample_idx"))[:, 0].to_list()
    rank = [int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "big") for k in keys]
    return (frame.with_columns(_rank=pl.Series(rank, dtype=pl.UInt64)).sort(by, "_rank")
            .group_by(by, maintain_order=True).head(n).drop("_rank").sort(by, "problem_id", "sample_idx"))


def counts(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows per (group, reason), before choosing: what the shown sample is drawn from."""
    return frame.group_by("group", "reason").len("total").sort("group", "reason")


def greedy_groups(evals: pl.DataFrame, problems: pl.DataFrame) -> pl.DataFrame:
    """The held-out greedy answers (`sample_idx` -1) as `rewarded greedy` / `rejected greedy` rows.
    `evals`: EvalSample columns; `problems`: problem_id, prompt, answer."""
    greedy = evals.filter(pl.col("sample_idx") == -1).join(
        problems.select("problem_id", "prompt", gold="answer"), on="problem_id", how="left")
    return greedy.select(
        group=pl.when("correct").then(pl.lit("rewarded greedy")).otherwise(pl.lit("rejected greedy")),
        reason=pl.col("reason").fill_null(pl.when("correct").then(pl.lit("ok")).otherwise(pl.lit("wrong"))),
        category="category", problem_id="problem_id", sample_idx=pl.col("sample_idx").cast(pl.Int64),
        prompt="prompt", completion="completion", extracted="extracted", gold="gold", label=pl.lit(None, pl.String),
    )


def training_groups(verdicts: pl.DataFrame, decisions: pl.DataFrame, problems: pl.DataFrame) -> pl.DataFrame:
    """The round's training samples the filter kept (`kept`) and the verifier did not reward
    (`rejected`), by key, without their texts (`texts_at` adds those to the chosen rows).
    `verdicts`: problem_id, sample_idx, extracted, correct, reason, label; `decisions`: problem_id,
    sample_idx, keep; `problems`: problem_id, answer, category."""
    rows = (verdicts.join(decisions.select("problem_id", "sample_idx", "keep"), on=["problem_id", "sample_idx"],
                          how="left")
            .join(problems.select("problem_id", "category", gold="answer"), on="problem_id", how="left"))
    rows = rows.with_columns(label=pl.when(pl.col("label") != pl.col("gold")).then("label"))  # only where not the gold
    kept = rows.filter(pl.col("keep").fill_null(False)).with_columns(group=pl.lit("kept"))
    rejected = rows.filter(~pl.col("correct")).with_columns(group=pl.lit("rejected"))
    return pl.concat([kept, rejected]).select(
        "group", "reason", "category", "problem_id", pl.col("sample_idx").cast(pl.Int64),
        prompt=pl.lit(None, pl.String), completion=pl.lit(None, pl.String), extracted="extracted", gold="gold",
        label="label")


def sample_key(frame: pl.DataFrame) -> pl.DataFrame:
    """The group to sample in: the group, and the verifier's reason for rejected rows."""
    return frame.with_columns(_by=pl.when(pl.col("group").str.starts_with("rejected"))
                              .then(pl.format("{}: {}", "group", "reason")).otherwise("group"))


def chosen(frame: pl.DataFrame, n: int = PER_GROUP, seed: int = SEED) -> pl.DataFrame:
    """`choose` over rewarded, kept, and rejected-by-reason groups."""
    return choose(sample_key(frame), n, seed, by="_by").drop("_by")


def clip(text: str | None) -> str | None:
    """A long text's first TEXT_HEAD and last TEXT_TAIL characters, the cut said."""
    if text is None or len(text) <= TEXT_HEAD + TEXT_TAIL + 100:
        return text
    return f"{text[:TEXT_HEAD]}\n[… {len(text) - TEXT_HEAD - TEXT_TAIL:,} characters cut …]\n{text[-TEXT_TAIL:]}"


@dataclass
class RoundSamples:
    """One round's chosen rows (COLUMNS), the group sizes they were drawn from, and what could not be read."""

    ref: RoundRef
    rows: pl.DataFrame
    totals: pl.DataFrame
    missing: list[str]


def round_samples(ref: RoundRef, n: int = PER_GROUP, seed: int = SEED) -> RoundSamples:
    """The chosen rows of one round, read at its revision; what cannot be read is said in `missing`."""
    from sharpen.schemas import Decision, EvalSample, Problem, Verdict

    wholes, picks, missing = [], [], []
    try:
        evals = columns_at(ref.rev, ref.eval_samples, EvalSample, "round", "problem_id", "category", "sample_idx",
                           "completion", "extracted", "correct", "reason")
        held_out = columns_at(ref.rev, EVAL_PROBLEMS, Problem, "problem_id", "prompt", "answer")
        if evals is not None and held_out is not None:
            greedy = greedy_groups(evals.filter(pl.col("round") == ref.round), held_out)
            wholes.append(greedy)
            picks.append(chosen(greedy, n, seed))
    except ArtifactError as e:
        missing.append(str(e))
    try:
        verdicts = decisions = problems = None
        if ref.round > 0:
            verdicts = columns_at(ref.rev, ROUND_VERDICTS, Verdict, "round", "problem_id", "sample_idx", "extracted",
                                  "correct", "reason", "label")
            decisions = columns_at(ref.rev, ROUND_DECISIONS, Decision, "problem_id", "sample_idx", "keep")
            problems = columns_at(ref.rev, ROUND_PROBLEMS, Problem, "problem_id", "answer", "category")
        if verdicts is not None and decisions is not None and problems is not None:
            training = training_groups(verdicts.filter(pl.col("round") == ref.round), decisions, problems)
            picked = chosen(training, n, seed)
            texts = texts_at(ref.rev, ROUND_SAMPLES, picked.select("problem_id", "sample_idx").unique())
            wholes.append(training)
            picks.append(picked.drop("prompt", "completion").join(texts, on=["problem_id", "sample_idx"], how="left")
                         .select(list(COLUMNS)))
    except ArtifactError as e:
        missing.append(str(e))
    except FileNotFoundError:
        missing.append(f"{ROUND_SAMPLES} at {ref.rev}: not in the local DVC cache (run `dvc pull` or `dvc fetch`)")
    rows = pl.concat(picks) if picks else pl.DataFrame(schema=COLUMNS)
    order = pl.col("group").replace_strict({g: i for i, g in enumerate(GROUPS)}, default=len(GROUPS))
    rows = rows.sort(order, "reason", "problem_id", "sample_idx").with_columns(  # rewarded first
        pl.col("prompt").map_elements(clip, return_dtype=pl.String),
        pl.col("completion").map_elements(clip, return_dtype=pl.String))
    totals = pl.concat([counts(w) for w in wholes]) if wholes else counts(pl.DataFrame(schema=COLUMNS))
    return RoundSamples(ref, rows, totals, missing)


# --- newly solved and newly failed -----------------------------------------------------------------


def transitions(a: pl.DataFrame, b: pl.DataFrame, problems: pl.DataFrame) -> pl.DataFrame:
    """The held-out problems whose greedy answer went from wrong in `a` to right in `b` (`newly solved`)
    or back (`newly failed`), as `sharpen diff` counts them, with both rounds' greedy answers and how
    many of their k samples were right. `a`, `b`: EvalSample columns; `problems`: problem_id, prompt,
    answer. Problems not evaluated in both are left out."""

    def per_problem(df: pl.DataFrame) -> pl.DataFrame:
        greedy = df.filter(pl.col("sample_idx") == -1).select(
            "problem_id", "category", "correct", "completion", "extracted", "reason")
        sampled = df.filter(pl.col("sample_idx") >= 0).group_by("problem_id").agg(
            right=pl.col("correct").sum(), k=pl.len())
        return greedy.join(sampled, on="problem_id", how="left").with_columns(
            pl.col("right").fill_null(0), pl.col("k").fill_null(0))

    both = per_problem(a).join(per_problem(b).drop("category"), on="problem_id", suffix="_b")
    both = both.filter(pl.col("correct") != pl.col("correct_b")).with_columns(
        group=pl.when("correct_b").then(pl.lit(CHANGES[0])).otherwise(pl.lit(CHANGES[1])),
        sample_idx=pl.lit(-1, pl.Int64))
    both = both.join(problems.select("problem_id", "prompt", gold="answer"), on="problem_id", how="left")
    return both.select("group", "problem_id", "category", "prompt", "gold",
                       *[pl.col(f"{c}{s}").alias(f"{c}_{side}") for side, s in (("a", ""), ("b", "_b"))
                         for c in ("completion", "extracted", "reason", "right", "k")],
                       "sample_idx").sort("group", "problem_id")


@dataclass
class Transition:
    """Newly solved and newly failed problems from round `a` to round `b`: the chosen rows, the totals."""

    a: RoundRef
    b: RoundRef
    rows: pl.DataFrame | None
    totals: dict[str, int]
    missing: str | None = None


def round_transitions(refs: list[RoundRef], n: int = PER_GROUP, seed: int = SEED) -> list[Transition]:
    """Each pair of consecutive rounds (base → 1 → 2 … → the round not advanced yet)."""
    from sharpen.schemas import EvalSample, Problem

    cols = ("round", "problem_id", "category", "sample_idx", "completion", "extracted", "correct", "reason")
    frames: dict[RoundRef, pl.DataFrame | str | None] = {}
    for ref in refs:
        try:
            f = columns_at(ref.rev, ref.eval_samples, EvalSample, *cols)
            frames[ref] = None if f is None else f.filter(pl.col("round") == ref.round)
        except ArtifactError as e:
            frames[ref] = str(e)
    out = []
    for a, b in zip(refs, refs[1:]):
        fa, fb = frames[a], frames[b]
        if not isinstance(fa, pl.DataFrame) or not isinstance(fb, pl.DataFrame):
            why = next((f for f in (fa, fb) if isinstance(f, str)), "no held-out samples")
            out.append(Transition(a, b, None, {}, why))
            continue
        try:
            problems = columns_at(b.rev, EVAL_PROBLEMS, Problem, "problem_id", "prompt", "answer")
        except ArtifactError as e:
            out.append(Transition(a, b, None, {}, str(e)))
            continue
        if problems is None:
            problems = pl.DataFrame(schema={"problem_id": pl.String, "prompt": pl.String, "answer": pl.String})
        table = transitions(fa, fb, problems)
        totals = {c: int((table["group"] == c).sum()) for c in CHANGES}
        rows = choose(table, n, seed).with_columns(
            *(pl.col(c).map_elements(clip, return_dtype=pl.String) for c in ("prompt", "completion_a", "completion_b")))
        out.append(Transition(a, b, rows, totals))
    return out


# --- what a round trained on -----------------------------------------------------------------------


def _n(x) -> str:
    return f"{x:,}" if isinstance(x, int) else "?"


def trained_on(train: dict, filter_: dict, generate: dict) -> str:
    """What a round's train stage learnt from, in words, from the stages' metrics.json: for SFT the
    kept share of the samples; where a kept share means nothing, what was trained on instead
    (DPO's pairs, GRPO's groups and their reward)."""
    objective = train.get("objective") or "sft"
    if train.get("skipped"):
        return f"{objective.upper()}: nothing trained ({train['skipped']})"
    if objective == "grpo":
        mean = train.get("rollout_reward_mean")
        zero = train.get("zero_variance_groups")
        return (f"GRPO ({train.get('rollouts_from') or 'online'}): {_n(train.get('groups'))} groups "
                f"({_n(train.get('rollouts'))} samples) on {_n(train.get('problems'))} problems, "
                f"rewards mean {'?' if mean is None else f'{mean:.2f}'}"
                + (f"; {_n(zero)} groups had equal rewards (no signal)" if zero else ""))
    if objective == "dpo":
        return f"DPO: {_n(train.get('pairs'))} preference pairs"
    by_origin = train.get("examples_by_origin") or {}
    kept, generated = filter_.get("kept"), generate.get("samples")
    share = f" ({100 * kept / generated:.1f}%)" if isinstance(kept, int) and generated else ""
    extra = ", ".join(f"{n:,} {o}" for o, n in sorted(by_origin.items()) if o != "sampled")
    return (f"{objective.upper()}: {_n(train.get('examples'))} examples: kept {_n(kept)} of {_n(generated)} samples"
            f"{share}" + (f" + {extra}" if extra else ""))
