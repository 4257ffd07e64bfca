"""Absolute Zero's validation: a proposed program runs in the sandbox, and what it returns is the gold.

A program becomes a task only if it passes every check, in order; otherwise the first failing
check is its recorded reason:

- `forbidden`: it imports, or names a builtin that reaches outside a pure computation (open,
  exec, eval, __import__, ...) or a dunder attribute. Checked on the syntax tree before anything
  runs; the sandbox confines whatever gets past (no network, read-only files, time and memory caps).
- `unparsable`: not a Python expression.
- `error` / `timeout`: it raised, or did not halt within `timeout_s`.
- `nondeterministic`: two runs returned different values.
- `not_an_answer`: the value is not an int (the embedded task's verifier reads integers).
- `output_too_long`: its decimal form exceeds `max_output_chars`.

Scaled down on the embedded default: the "program" is one expression over integer literals
(`37+48`), called as `def f(): return <expr>` (Absolute Zero's deduction task with no input).
The value comes back from the sandbox as data (`Calls`), never parsed from what the program prints.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from sharpen.sandbox import Calls, Limits, run_jobs

FORBIDDEN_NAMES = frozenset({
    "open", "exec", "eval", "compile", "__import__", "input", "breakpoint", "globals", "locals", "vars",
    "getattr", "setattr", "delattr", "help", "exit", "quit", "memoryview", "print",
})
REASONS = ("ok", "unparsable", "forbidden", "error", "timeout", "nondeterministic", "not_an_answer", "output_too_long")


@dataclass(frozen=True)
class Execution:
    reason: str  # one of REASONS
    answer: str | None  # the gold output when reason == "ok"


def static_reason(expression: str) -> str | None:
    """`unparsable` or `forbidden` if the expression fails before running; None if it may run."""
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError):
        return "unparsable"
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            return "forbidden"
        if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            return "forbidden"
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            return "forbidden"
    return None


def program_for(expression: str) -> str:
    return f"def f():\n    return ({expression})\n"


def execute(expressions: list[str], *, timeout_s: float, max_output_chars: int) -> list[Execution]:
    """Validate each expression (see the module docstring); run twice in the sandbox for determinism."""
    out: list[Execution | None] = [None] * len(expressions)
    runnable = []
    for i, e in enumerate(expressions):
        why = static_reason(e)
        if why:
            out[i] = Execution(why, None)
        else:
            runnable.append(i)
    limits = Limits(timeout_s=timeout_s, cpu_s=max(1, int(timeout_s + 0.999)), memory_mb=512, processes=4,
                    output_chars=max_output_chars + 64)
    jobs = [Calls(program_for(expressions[i]), "f", (((), {}),)) for i in runnable]
    first = run_jobs(tuple(jobs), limits) if jobs else []
    second = run_jobs(tuple(jobs), limits) if jobs else []
    for i, a, b in zip(runnable, first, second, strict=True):
        out[i] = _judge(a, b, max_output_chars)
    return out  # type: ignore[return-value]


def _judge(a, b, max_output_chars: int) -> Execution:
    if a.status == "timeout" or b.status == "timeout":
        return Execution("timeout", None)
    va, vb = a.values, b.values
    if not va or not vb or va[0][0] != "ok" or vb[0][0] != "ok":
        return Execution("error", None)
    if va[0] != vb[0] or type(va[0][1]) is not type(vb[0][1]):
        return Execution("nondeterministic", None)
    value = va[0][1]
    if type(value) is not int:
        return Execution("not_an_answer", None)
    try:
        text = str(value)
    except ValueError:  # more digits than int->str allows
        return Execution("output_too_long", None)
    if len(text) > max_output_chars:
        return Execution("output_too_long", None)
    return Execution("ok", text)
