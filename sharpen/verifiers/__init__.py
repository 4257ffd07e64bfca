"""Verifiers: plain functions with one signature, a batch in and one result per item out.

    verifier(completions: Sequence[str], references: Sequence[str | None], *, prompts=None) -> list[VerifyResult]

`prompts` (the problems' rendered prompts) lets a verifier refuse an answer that restates its
question. The same function scores samples for the filter and for evaluation:
- `exact_integer`: the integer after the last `|` (the embedded arithmetic task);
- `math_equiv`: one final answer in the task's `answer_form` (`verify.answer_form`: a restated
  question, an unevaluated expression or several candidates earn nothing), then exact or
  symbolic equality (sharpen/verifiers/math.py, sharpen/verifiers/answers.py);
- `unit_tests`: the problem's tests run in the sandbox (sharpen/verifiers/execution.py);
- `reasoning_gym`: the dataset's own `score_answer`, a pass only at 1.0 (sharpen/verifiers/gym.py);
- `program_input`, `program_io`: Absolute Zero's abduction and induction, the solver's input or
  program run in the sandbox against a JSON reference (sharpen/verifiers/programs.py).
Each is one record in sharpen/verifiers/registry.py (its function and its traits), and a user's
own verifier is named by import path (`verify.verifier: mypkg.rewards:score`, documented there).
A problem may name its own verifier (its `verifier` column; self-play's abduction and induction
tasks do): `verify_frame` scores each problem with it, the round's `verify.verifier` otherwise.
A reference a verifier cannot read (a gold answer in words for `exact_integer`, one of 5,000 digits,
tests that are not literals) raises `UnreadableReference`, which `verify_frame` turns into an error
naming the problem; a `verify.*` setting or a user's verifier that cannot score raises `VerifierError`.
Majority-vote pseudo-labels (`labels: majority`) reuse a verifier's extraction; answers vote by
the record's `vote_key` where equal answers can be written differently (math_equiv).
"""

from __future__ import annotations

from collections.abc import Sequence

from sharpen.verifiers.result import (  # noqa: F401  (every verifier's record, and its errors)
    UnreadableReference,
    Verifier,
    VerifierError,
    VerifyResult,
)
from sharpen.verifiers.answers import FORM_REASONS
from sharpen.verifiers.registry import BUILTIN, VerifierRecord, lookup  # noqa: F401

NO_VOTE_REASONS = (*FORM_REASONS, "unparseable", "timeout")  # such answers never become a label


def vote_keys(verifier_name: str, answers: Sequence[str | None]) -> list[str | None]:
    """The key each extracted answer votes under (None stays None: it does not vote)."""
    key = lookup(verifier_name).vote_key
    if key is None:
        return list(answers)
    keys = {a: key(a) for a in set(answers) if a is not None}
    return [None if a is None else keys[a] for a in answers]


def references_for(verifier_name: str, problems):
    """The verifier's reference for each problem; an error names problems lacking the column it needs."""
    import polars as pl

    from sharpen.io import ArtifactError

    column, build = lookup(verifier_name).reference
    if column not in problems.columns or problems[column].null_count():
        without = problems.filter(pl.col(column).is_null()) if column in problems.columns else problems
        raise ArtifactError(
            f"verify.verifier: {verifier_name} needs every problem to have '{column}'; "
            f"{without.height} have none, e.g. {without['problem_id'][0]!r}"
        )
    return problems.select(pl.struct("prompt", column).map_elements(build, return_dtype=pl.String)).to_series()


def unreadable_references(problems, verifier_name: str, answer_form: str = "auto") -> list[tuple[str, str, str]]:
    """(problem_id, answer, reason) of every problem whose gold answer its verifier cannot read: the
    answer, written as a completion, must verify against itself. For the verifiers that read the
    problem's `answer` (exact_integer, math_equiv); the others' references are tests or sources."""
    if not lookup(verifier_name).reads_answer:
        return []
    answers = problems["answer"].to_list()
    verifier = get_verifier(verifier_name, answer_form)
    try:
        results = [(r.correct, r.reason) for r in verifier(answers, answers)]
    except UnreadableReference:  # which ones: item by item
        results = []
        for a in answers:
            try:
                r = verifier([a], [a])[0]
                results.append((r.correct, r.reason))
            except UnreadableReference as e:
                results.append((False, e.why))
    return [(pid, a, reason) for pid, a, (correct, reason) in zip(problems["problem_id"], answers, results, strict=True)
            if not correct]


def preflight(problems, verifier_name: str, answer_form: str = "auto", *, n: int = 4) -> None:
    """Score the first `n` problems' gold answers, written as completions, exactly as their samples
    will be scored (`verify_frame`): a reference the verifier cannot build or read, a missing
    column or a verifier that cannot run (the sandbox) fails here, in seconds, before a stage loads a
    model or samples. The results are not asserted (a gold answer need not be a passing completion)."""
    import polars as pl

    head = problems.head(n)
    if not head.height:
        return
    probe = head.select(
        pl.lit(0, pl.Int64).alias("round"), "problem_id", pl.lit(0, pl.Int64).alias("sample_idx"), "prompt",
        pl.col("answer").alias("completion"),
    )
    verify_frame(probe, problems, verifier_name, answer_form=answer_form)


def get_verifier(name: str, answer_form: str = "auto") -> Verifier:
    """The named verifier (built in, or a user's by import path), with the task's answer form bound
    where it takes one."""
    return lookup(name).bound(answer_form)


def gold_references(verifier_name: str, problems) -> list[str | None]:
    """What each problem's samples are scored against: the verifier's own reference where it builds
    one (tests, sources), else the gold `answer`."""
    if lookup(verifier_name).reference is not None:
        return references_for(verifier_name, problems).to_list()
    return problems["answer"].to_list()


def _prompts(frame) -> list[str] | None:
    return frame["prompt"].to_list() if "prompt" in frame.columns else None


def majority_labels(samples, verifier_name: str, answer_form: str = "auto"):
    """problem_id → (majority answer, its share of the problem's samples), read from completions alone.

    Answers are extracted by the verifier itself (scored against no reference); unreadable ones
    do not vote. Answers vote by value (`vote_keys`); the label is the winning value as its first
    sample wrote it. Ties go to the value seen first in sample order. No readable answer → null label.
    """
    import polars as pl

    verifier = get_verifier(verifier_name, answer_form)
    results = verifier(samples["completion"].to_list(), [None] * samples.height, prompts=_prompts(samples))
    extracted = [None if r.reason in NO_VOTE_REASONS else r.extracted for r in results]
    votes = samples.select("problem_id", "sample_idx").with_columns(
        answer=pl.Series(extracted, dtype=pl.String), key=pl.Series(vote_keys(verifier_name, extracted), dtype=pl.String)
    )
    n = votes.group_by("problem_id").agg(n=pl.len())
    counts = (
        votes.drop_nulls("key")
        .sort("problem_id", "sample_idx")
        .group_by("problem_id", "key")
        .agg(count=pl.len(), first=pl.col("sample_idx").min(), answer=pl.col("answer").first())
        .sort(["problem_id", "count", "first"], descending=[False, True, False])
        .group_by("problem_id", maintain_order=True)
        .first()
    )
    return n.join(counts, on="problem_id", how="left").select(
        "problem_id", label="answer", majority_ratio=(pl.col("count").fill_null(0) / pl.col("n")).cast(pl.Float64)
    )


def verify_frame(samples, problems, verifier_name: str, labels: str = "gold", answer_form: str = "auto"):
    """`Verdict` rows for a `Sample` frame, scored against gold answers or majority pseudo-labels.

    With `labels="majority"` the problems' answers are never read: the verdicts of a problem
    file with every answer blanked out are the same.
    """
    import polars as pl

    from sharpen.io import ArtifactError

    routed = _routed(samples, problems, verifier_name)
    if routed:
        parts = [verify_frame(samples.filter(pl.col("problem_id").is_in(ids.implode())),
                              problems.filter(pl.col("problem_id").is_in(ids.implode())).drop("verifier"), name, labels,
                              answer_form if name == verifier_name else "auto")
                 for name, ids in routed]
        return pl.concat(parts).sort("problem_id", "sample_idx")
    record = lookup(verifier_name)
    verifier = record.bound(answer_form)
    if labels != "gold" and not record.reads_answer:
        what = record.reference[0] if record.reference else "reference spec"
        raise VerifierError(f"verify.labels: {verifier_name} scores against each problem's {what}; "
                            "majority labels need a verifier that compares answers")
    if labels == "majority" and not record.extracts:
        raise VerifierError(f"verify.labels: majority labels vote on the answers a verifier reads; {verifier_name} "
                            "reports none (return VerifyResult(extracted=...) from it to vote)")
    if record.reference is not None:
        problems = problems.with_columns(answer=references_for(verifier_name, problems))
    if labels == "majority":
        joined = samples.join(majority_labels(samples, verifier_name, answer_form), on="problem_id", how="left")
    elif labels == "gold":
        joined = samples.join(problems.select("problem_id", label="answer"), on="problem_id", how="left").with_columns(
            majority_ratio=pl.lit(None, dtype=pl.Float64)
        )
        known = set(problems["problem_id"].to_list())
        missing = [p for p in joined["problem_id"].unique().to_list() if p not in known]
        if missing:
            raise ArtifactError(f"verify: samples name problems missing from the problem file: {missing[:5]}")
    else:
        raise VerifierError(f"verify.labels: unknown {labels!r}; allowed: 'gold', 'majority'")
    results = scored(verifier, verifier_name, joined["completion"].to_list(), joined["label"].to_list(),
                     joined["problem_id"].to_list(), prompts=_prompts(joined), labels=labels)
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
            "label": joined["label"].cast(pl.String),
            "majority_ratio": joined["majority_ratio"].cast(pl.Float64),
        }
    ).sort("problem_id", "sample_idx")


def scored(verifier: Verifier, verifier_name: str, completions: list, references: list, problem_ids: list, *,
           prompts: list | None = None, labels: str = "gold") -> list[VerifyResult]:
    """`verifier(completions, references)`; a reference it cannot read is an ArtifactError naming the
    problem (`problem_ids`, one per item) and `verify.verifier`, not an error of the verifier's own."""
    from sharpen.io import ArtifactError

    try:
        return verifier(completions, references, prompts=prompts)
    except UnreadableReference as e:
        pid = next((p for p, r in zip(problem_ids, references, strict=True) if r == e.reference), None)
        which = f"problem {pid!r}" if pid is not None else "a problem"
        if labels == "majority":
            raise ArtifactError(f"verify.verifier {verifier_name}: {which}'s majority label, read from its samples, "
                                f"cannot be read back as a gold answer: {e}") from None
        raise ArtifactError(f"{which}: {e} (verify.verifier {verifier_name}). Fix that problem's answer where it "
                            "comes from (task.path's file, or the task) and rerun `dvc repro`, or choose a verifier "
                            "that reads it") from None


def _routed(samples, problems, verifier_name: str):
    """[(verifier, problem ids)] of the sampled problems when some name a verifier of their own (null:
    the round's), None when the round's verifier scores them all. Samples of unknown problems are an error."""
    import polars as pl

    from sharpen.io import ArtifactError

    if problems is None or "verifier" not in problems.columns or problems["verifier"].null_count() == problems.height:
        return None
    names = problems["verifier"].fill_null(verifier_name)
    unknown = sorted(set(names.to_list()) - set(BUILTIN) - {verifier_name})
    if unknown:
        bad = problems.filter(names.is_in(unknown))["problem_id"][0]
        raise ArtifactError(f"verifier: problem {bad!r} names an unknown verifier {unknown[0]!r}; "
                            f"allowed: {', '.join(BUILTIN)}")
    missing = sorted(set(samples["problem_id"].to_list()) - set(problems["problem_id"].to_list()))
    if missing:
        raise ArtifactError(f"verify: samples name problems missing from the problem file: {missing[:5]}")
    sampled = problems.select("problem_id", name=names).filter(pl.col("problem_id").is_in(samples["problem_id"].implode()))
    by_name = sampled.group_by("name", maintain_order=True).agg(pl.col("problem_id"))
    if by_name.height <= 1 and set(by_name["name"].to_list()) <= {verifier_name}:
        return None  # one verifier, the round's (or no samples): scored as usual
    return [(name, pl.Series(ids, dtype=pl.String)) for name, ids in by_name.iter_rows()]


def label_accuracy(verdicts, problems, verifier_name: str, answer_form: str = "auto") -> dict:
    """How well pseudo-labels match the hidden truth (TTRL's label and reward accuracy); logged only."""
    import polars as pl

    verifier = get_verifier(verifier_name, answer_form)
    joined = verdicts.join(problems.select("problem_id", "answer"), on="problem_id", how="left", maintain_order="left")
    truly = pl.Series([r.correct for r in scored(verifier, verifier_name, joined["extracted"].fill_null("").to_list(),
                                                 joined["answer"].to_list(), joined["problem_id"].to_list())])
    per_problem = joined.group_by("problem_id").agg(pl.col("label").first(), pl.col("answer").first())
    label_ok = [r.correct for r in scored(verifier, verifier_name, per_problem["label"].fill_null("").to_list(),
                                          per_problem["answer"].to_list(), per_problem["problem_id"].to_list())]
    return {
        "label_accuracy": sum(label_ok) / max(len(label_ok), 1),
        "reward_accuracy": float((truly == joined["correct"]).mean()) if joined.height else 0.0,
        "majority_ratio": float(joined["majority_ratio"].mean()) if joined.height else 0.0,
        "true_sample_accuracy": float(truly.mean()) if joined.height else 0.0,
    }


def judge_agreement(verdicts, samples, problems, verifier_name: str, answer_form: str = "auto") -> dict:
    """How the judge's verdicts compare with the task's verifier on the gold answers; logged only."""
    import polars as pl

    truth = verify_frame(samples, problems, verifier_name, answer_form=answer_form).select("problem_id", "sample_idx", truly="correct")
    joined = verdicts.join(truth, on=["problem_id", "sample_idx"])
    judged = joined.filter(pl.col("correct"))
    return {
        "judge_agreement": float((joined["correct"] == joined["truly"]).mean()) if joined.height else 0.0,
        "judge_precision": float(judged["truly"].mean()) if judged.height else 0.0,
        "judge_unparseable": int((joined["reason"] == "unparseable").sum()),
        "true_sample_accuracy": float(joined["truly"].mean()) if joined.height else 0.0,
    }
