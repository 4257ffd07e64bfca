"""Self-play's proposer writes the round's problems (`propose.kind`: r-zero | absolute-zero).

The proposer policy (data/state/proposer, or the base until advance promotes one) samples
`propose.group` proposals for each of `propose.prompts` prompts, with their token log-probs (its
GRPO step trains on exactly these groups). Each proposal is parsed to a question; Absolute
Zero's are run in the sandbox, and the value the program returns is the gold. A question equal to
a held-out problem is refused (`held_out`): the solver is scored on the held-out set and never
trains on it. Every proposal is kept in proposals.parquet with its reason; the valid, distinct
questions become problems.parquet, which the generate stage's solver answers m = generate.k times.

A prompt holding `{examples}` is filled, slot by slot, with questions drawn from the seed
examples (`propose.seed_examples`, checked like proposals) and the buffer of tasks earlier rounds
accepted (data/state/buffer.parquet, carried by advance). With
`propose.kind: none` (every non-self-play recipe) both files are written empty, without importing
the sandbox (sharpen/selfplay/execution.py is imported by the functions that run programs) or
pandera (sharpen/empty.py; sharpen.schemas is imported past that point).

Run: `python -m stages.propose --state data/state --base data/base/model --held-out data/tasks/eval.parquet \
        --out data/round/propose`
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from sharpen.backends import load_backend
from sharpen.empty import write_empty
from sharpen.io import hash_path, read_frame, write_frame, write_json
from sharpen.config import load_params
from sharpen.sampling import derive_seed, sample_frame
from sharpen.selfplay.proposals import question_of, repetition_penalty
from sharpen.stage import Timer, progress, run_stage
from sharpen.rounds.state import current_policy_dir
from sharpen.tasks import apply_template, arithmetic

if TYPE_CHECKING:
    from sharpen.selfplay.execution import Execution

PROBLEM_COLUMNS = {"problem_id": pl.String, "prompt": pl.String, "answer": pl.String, "category": pl.String,
                   "verifier": pl.String}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--held-out", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_params()
    p, g = params.propose, params.generate
    timer = Timer()
    if p.kind == "none":
        write_empty(args.out / "proposals.parquet", "Proposal")
        write_empty(args.out / "problems.parquet", "Problem", columns=PROBLEM_COLUMNS)
        write_json({"round": params.round, "kind": "none", "wall_s": timer.seconds}, args.out / "metrics.json")
        return
    from sharpen.schemas import Problem, Proposal

    policy = current_policy_dir(args.state, args.base, role="proposer")
    policy_hash = hash_path(policy)
    slots = pl.DataFrame({"problem_id": [f"slot-{i:04d}" for i in range(p.prompts)],
                          "prompt": proposer_prompts(p, seed_questions(p) + buffered_questions(args.state),
                                                     params.seed, params.round)})
    backend = load_backend(g.backend, policy, batch_size=g.batch_size, chat=params.task.chat,
                           tensor_parallel_size=g.tensor_parallel_size, autocast=g.autocast, logprobs=True, server=g.server)
    bar = progress(p.prompts * p.group, f"propose: round {params.round}", "proposal")
    completions = backend.generate(slots["prompt"].to_list(), n=p.group, temperature=p.temperature, top_p=1.0,
                                   max_new_tokens=p.max_new_tokens, seed=derive_seed(params.seed, params.round, "propose"),
                                   on_progress=bar.update, logprobs=True)
    bar.close()
    samples = sample_frame(slots, completions, round_=params.round, policy_hash=policy_hash, temperature=p.temperature)
    held_out = set(read_frame(args.held_out, Problem)["problem_id"].to_list())
    proposals, problems = validate(samples, p, held_out)
    if p.program == "expression":  # function-form programs are posed by propose.question, not the task's template
        problems = apply_template(problems, params.task.template, params.task.name)
    write_frame(proposals, args.out / "proposals.parquet", Proposal)
    write_frame(problems, args.out / "problems.parquet", Problem)
    reasons = dict(sorted(proposals.group_by("reason").len().iter_rows()))
    parsed = proposals.filter(pl.col("question").is_not_null())
    write_json(
        {
            "round": params.round,
            "kind": p.kind,
            "proposals": proposals.height,
            "valid_share": reasons.get("ok", 0) / max(proposals.height, 1),
            "reasons": reasons,
            "problems": problems.height,
            # diversity: distinct questions per parsed proposal, and the mean repetition penalty (r-zero)
            "distinct_share": parsed["question"].n_unique() / max(parsed.height, 1),
            "repetition_mean": float(parsed["repetition"].mean()) if parsed.height else None,
            "categories": dict(sorted(problems.group_by("category").len().iter_rows())),
            "proposer_hash": policy_hash,
            "wall_s": timer.seconds,
        },
        args.out / "metrics.json",
    )
    print(f"propose ({p.kind}): {problems.height} problems from {proposals.height} proposals "
          f"({reasons.get('ok', 0)} valid) in {timer.seconds:.0f}s")


def buffered_questions(state_dir: Path) -> list[str]:
    """The questions earlier rounds accepted (data/state/buffer.parquet), oldest first."""
    from sharpen.rounds.layout import BUFFER
    from sharpen.schemas import Proposal

    path = state_dir / BUFFER
    if not path.exists():
        return []
    return list(dict.fromkeys(read_frame(path, Proposal).sort("round")["question"].to_list()))


def seed_questions(p) -> list[str]:
    """`propose.seed_examples`, each parsed and (absolute-zero) run like a proposal, normalised as the
    buffer holds them; one that would be rejected is an error naming its index and the reason."""
    from sharpen.params import ParamsError
    from sharpen.selfplay.execution import execute

    questions = []
    for i, text in enumerate(p.seed_examples):
        question = question_of(text, p.kind, p.program)
        reason = "unparsable" if question is None else "ok"
        if question is not None and p.kind == "absolute-zero":
            ran = execute([question], timeout_s=p.timeout_s, max_output_chars=p.max_output_chars, form=p.program)[0]
            reason = task_reason(ran, "induction" if "induction" in p.tasks else "deduction")
        if reason != "ok":
            raise ParamsError(f"propose.seed_examples[{i}]: {reason} as a {p.kind} proposal "
                              f"(propose.program: {p.program}): {text[:80]!r}")
        questions.append(question)
    return questions


def proposer_prompts(p, buffer: list[str], seed: int, round_: int) -> list[str]:
    """One prompt per slot: `propose.prompt`, with `{examples}` (if it has one) replaced by
    `propose.examples` questions drawn from the buffer of accepted tasks, one line each (programs:
    separated by a blank line; Absolute Zero's reference tasks); the draw is seeded by (seed, round, slot)."""
    import random

    if "{examples}" not in p.prompt:
        return [p.prompt] * p.prompts
    out = []
    for i in range(p.prompts):
        rng = random.Random(derive_seed(seed, round_, f"examples-{i}"))
        pool = list(dict.fromkeys(buffer))
        shown = rng.sample(pool, min(p.examples, len(pool)))
        out.append(p.prompt.replace("{examples}", ("\n" if p.program == "expression" else "\n\n").join(shown)))
    return out


def validate(samples: pl.DataFrame, p, held_out: set[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(Proposal rows, Problem rows): each proposal parsed, checked and, if valid, made a problem of
    its slot's task type (`slot_task`)."""
    from sharpen.schemas import Proposal, columns
    from sharpen.selfplay.execution import execute

    texts = samples["completion"].to_list()
    tasks = [slot_task(slot, p) for slot in samples["problem_id"]]
    questions = [question_of(t, p.kind, p.program) for t in texts]
    reasons = ["unparsable" if q is None else "held_out" if q in held_out else "ok" for q in questions]
    answers: list[str | None] = [None] * len(texts)
    ran: dict[str, Execution] = {}
    if p.kind == "absolute-zero":  # the gold is what the program returns in the sandbox
        runnable = [i for i, r in enumerate(reasons) if r == "ok"]
        distinct = list(dict.fromkeys(questions[i] for i in runnable))
        ran = dict(zip(distinct, execute(distinct, timeout_s=p.timeout_s, max_output_chars=p.max_output_chars,
                                         form=p.program), strict=True))
        for i in runnable:
            reasons[i], answers[i] = task_reason(ran[questions[i]], tasks[i]), ran[questions[i]].answer
    else:  # r-zero: the truth is computed for logging only; the solver's labels are its own majority
        for i, q in enumerate(questions):
            if reasons[i] == "ok":
                a, b = arithmetic.operands(q)
                answers[i] = str(a + b)
    parsed = [i for i, q in enumerate(questions) if q is not None]
    cluster, repetition = [0] * len(texts), [0.0] * len(texts)
    if parsed:
        ids, shares = repetition_penalty([questions[i] for i in parsed], p.repetition_threshold)
        for i, c, share in zip(parsed, ids, shares, strict=True):
            cluster[i], repetition[i] = c, share
    ok = [r == "ok" for r in reasons]
    proposals = pl.DataFrame(
        {
            "round": samples["round"], "slot": samples["problem_id"], "sample_idx": samples["sample_idx"],
            "prompt": samples["prompt"], "completion": samples["completion"], "temperature": samples["temperature"],
            "token_ids": samples["token_ids"], "logprobs": samples["logprobs"], "question": questions,
            "reason": reasons,
            "problem_id": [problem_id(q, p.program, t) if k else None for q, k, t in zip(questions, ok, tasks, strict=True)],
            "answer": answers, "cluster": cluster, "repetition": repetition,
            "solver_rate": [None] * len(texts), "reward": [None] * len(texts),
        },
        schema=columns(Proposal),
    )
    valid = proposals.filter(pl.col("problem_id").is_not_null()).unique("problem_id", keep="first", maintain_order=True)
    rows = [task_problem(pid, q, answer, ran.get(q), slot_task(slot, p), p)
            for pid, q, answer, slot in valid.select("problem_id", "question", "answer", "slot").iter_rows()]
    problems = pl.DataFrame(rows, schema=PROBLEM_COLUMNS, orient="row").sort("problem_id")
    return proposals, problems


def task_reason(ran: Execution, task: str) -> str:
    """Why a program that ran cannot pose `task` ("ok" if it can): the executor's reason, or
    `too_few_calls` for induction with one call (with one pair shown, nothing would check the program)."""
    if ran.reason == "ok" and task == "induction" and len(ran.values) < 2:
        return "too_few_calls"
    return ran.reason


def slot_task(slot: str, p) -> str:
    """The task type a proposer slot's proposals become: propose.tasks, round robin over the slots."""
    return p.tasks[int(slot.removeprefix("slot-")) % len(p.tasks)] if p.kind == "absolute-zero" else "deduction"


def task_problem(pid: str, question: str, answer: str, ran: Execution | None, task: str, p) -> tuple:
    """One Problem row (PROBLEM_COLUMNS) posing a valid proposal as its task type. Deduction is
    scored by the round's verifier against the gold; abduction and induction by running what the
    solver wrote (sharpen/verifiers/programs.py) against the reference held in `answer`."""
    from sharpen.selfplay.execution import parse_program

    if p.program == "expression":
        return pid, arithmetic.prompt_for_question(question), answer, _category(question), None
    program = parse_program(question, p.program)
    definitions = question[: question.index("\n" + program.entry_point + "(") + 1]  # the lines before the calls
    first_call = question[len(definitions):].split("\n", 1)[0]
    if task == "deduction":
        return pid, p.question.replace("{program}", definitions).replace("{call}", first_call), answer, task, None
    if task == "abduction":
        prompt = (p.abduction_question.replace("{program}", definitions).replace("{output}", answer)
                  .replace("{entry_point}", program.entry_point))
        reference = {"program": definitions, "entry_point": program.entry_point, "output": answer}
        return pid, prompt, json.dumps(reference), task, "program_input"
    calls = list(zip(program.calls, ran.values, strict=True))
    shown = calls[: (len(calls) + 1) // 2]
    examples = "\n".join(f"{program.entry_point}({', '.join(map(repr, args))}) == {value}" for args, value in shown)
    prompt = p.induction_question.replace("{entry_point}", program.entry_point).replace("{examples}", examples)
    reference = {"entry_point": program.entry_point,
                 "cases": [{"input": repr(tuple(args)), "output": str(value)} for args, value in calls]}
    return pid, prompt, json.dumps(reference), task, "program_io"


def problem_id(question: str, program: str, task: str = "deduction") -> str:
    """An expression is its own id (`37+48`); a function-form program, many lines long, is named by
    its hash and its task type (`prog-` deduction, `abd-` abduction, `ind-` induction)."""
    if program == "expression":
        return question
    import hashlib

    return TASK_PREFIX[task] + hashlib.sha256(question.encode()).hexdigest()[:12]


TASK_PREFIX = {"deduction": "prog-", "abduction": "abd-", "induction": "ind-"}


def _category(question: str) -> str:
    """The arithmetic task's category (operand digit lengths) for `a+b`; `expression` otherwise."""
    try:
        return arithmetic.category(*arithmetic.operands(question))
    except ValueError:
        return "expression"


if __name__ == "__main__":
    run_stage(main)
