"""Absolute Zero's abduction and induction verifiers: what the solver wrote is run in the sandbox.

Both take the verifiers' one signature; the reference is the JSON the propose stage stores in the
problem's `answer` (a problem names its verifier in its `verifier` column; `verify_frame` routes it):

- `program_input` (abduction: program + output -> an input). Reference `{"program", "entry_point",
  "output"}`. The answer is the last line of the completion that is a call of the entry point with
  literal arguments (`f(3, [1, 2])`, backticks allowed), read with `ast.literal_eval`: data, never
  code. The sandbox calls the reference program on those arguments; a pass means it returned
  exactly the output (type-strict: `True` is not `1`). Any input that gives the output passes, as
  in the paper.
- `program_io` (induction: input/output pairs -> the program). Reference: the unit-test verifier's
  input/output spec (`{"entry_point", "cases"}`, sharpen/verifiers/execution.py). The program is the
  completion's first fenced code block, else the whole completion; the sandbox calls it on every
  case's input and its values are compared outside the program's process, type-strict. The
  prompt shows the first half of the cases; the rest check that the program is not a lookup table.

Nothing the solver writes can mark a pass: the program's process never sees the expected values,
and what it returns comes back as data, compared by `execution.same`.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence

from sharpen.sandbox import Calls, run_jobs
from sharpen.verifiers.result import UnreadableReference, VerifyResult, shown
from sharpen.verifiers.execution import CODE_FENCE, LIMITS, io_cases, outcome_verdict, same


def call_arguments(completion: str, entry_point: str) -> tuple | None:
    """The literal arguments of the completion's last line that is a call of `entry_point`; None if none."""
    for line in reversed(completion.strip().split("\n")):
        text = line.strip().strip("`").strip()
        try:
            node = ast.parse(text, mode="eval").body
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point
                and not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args)):
            continue
        try:
            return tuple(ast.literal_eval(a) for a in node.args)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
    return None


def _reference(reference: str | None, keys: tuple[str, ...], verifier: str, i: int) -> dict:
    try:
        ref = json.loads(reference) if reference is not None else None
    except ValueError:
        ref = None
    if not isinstance(ref, dict) or not all(k in ref for k in keys):
        raise UnreadableReference(reference, f"{verifier}: its answer {str(reference)[:80]!r} is not a JSON object "
                                  f"with {', '.join(keys)}")
    return ref


def program_input(
    completions: Sequence[str], references: Sequence[str | None], *, prompts: Sequence[str] | None = None
) -> list[VerifyResult]:
    """Abduction: reward 1.0 when the reference program, called on the solver's input, returns the output."""
    if len(completions) != len(references):
        raise ValueError(f"program_input: {len(completions)} completions but {len(references)} references")
    out: list[VerifyResult | None] = [None] * len(completions)
    jobs, pending = [], []
    for i, (completion, reference) in enumerate(zip(completions, references, strict=True)):
        ref = _reference(reference, ("program", "entry_point", "output"), "program_input", i)
        args = call_arguments(completion, ref["entry_point"])
        if args is None:
            out[i] = VerifyResult(None, 0.0, False, "unparseable")
            continue
        try:
            expected = ast.literal_eval(ref["output"])
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as e:
            raise UnreadableReference(reference, f"program_input: its output {str(ref['output'])[:80]!r} is not a "
                                      f"Python literal ({type(e).__name__}: {e})") from None
        jobs.append(Calls(ref["program"], ref["entry_point"], ((args, {}),)))
        pending.append((i, f"{ref['entry_point']}({', '.join(shown(a, 10_000) for a in args)})", expected))
    for (i, call, expected), outcome in zip(pending, run_jobs(tuple(jobs), LIMITS) if jobs else [], strict=True):
        values = outcome.values or ()
        if outcome.status == "timeout":
            out[i] = VerifyResult(call, 0.0, False, "timeout")
        elif len(values) == 1 and values[0][0] == "ok" and same(expected, values[0][1]):
            out[i] = VerifyResult(call, 1.0, True, "ok")
        else:
            out[i] = VerifyResult(call, 0.0, False, "wrong")
    return out  # type: ignore[return-value]


def program_io(
    completions: Sequence[str], references: Sequence[str | None], *, prompts: Sequence[str] | None = None
) -> list[VerifyResult]:
    """Induction: reward 1.0 when the solver's program returns every case's output."""
    if len(completions) != len(references):
        raise ValueError(f"program_io: {len(completions)} completions but {len(references)} references")
    jobs, specs = [], []
    for i, (completion, reference) in enumerate(zip(completions, references, strict=True)):
        _reference(reference, ("entry_point", "cases"), "program_io", i)
        try:
            spec = io_cases(reference)
        except ValueError as e:
            raise UnreadableReference(reference, f"program_io: its cases cannot be read: {e}") from None
        block = CODE_FENCE.search(completion)
        jobs.append(Calls(block.group(1) if block else completion, spec["entry_point"],
                          [(args, kwargs) for args, kwargs, _ in spec["cases"]]))
        specs.append(spec)
    return [outcome_verdict(o, s) for o, s in zip(run_jobs(tuple(jobs), LIMITS) if jobs else [], specs, strict=True)]
