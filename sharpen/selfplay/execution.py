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

Two program forms (`propose.program`):
- `expression`, the embedded default scaled down: one expression over integer literals (`37+48`),
  called as `def f(): return <expr>` (Absolute Zero's deduction task with no input).
- `function`, the real thing for an LLM proposer: Python function definitions followed by one or
  more calls of one function with literal arguments, a line each (`def f(x): ...` then `f(7)`).
  The definitions run in the sandbox and each call is made there, by name, with the parsed
  arguments; only definitions may precede the calls (no top-level statements run). Every call must
  pass the checks below; the first call's value is the task's gold (deduction, abduction), and all
  of them are induction's input/output pairs.
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
    answer: str | None  # the first call's value, the gold, when reason == "ok"
    values: tuple[int, ...] = ()  # every call's value, in order, when reason == "ok"


PROGRAM_FORMS = ("expression", "function")


@dataclass(frozen=True)
class Program:
    source: str  # definitions only
    entry_point: str
    calls: tuple[tuple, ...]  # the literal arguments of each call, in order


def _forbidden(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal)):
            return True
        if isinstance(node, ast.Name) and (node.id in FORBIDDEN_NAMES or node.id.startswith("__")):
            return True
        if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            return True
        if isinstance(node, ast.FunctionDef) and node.name.startswith("__"):
            return True
    return False


def parse_program(question: str, form: str) -> Program | str:
    """The program a question states, or why it cannot run: `unparsable` or `forbidden`."""
    if form not in PROGRAM_FORMS:
        raise ValueError(f"propose.program: {form!r} is not one of {PROGRAM_FORMS}")
    try:
        tree = ast.parse(question, mode="eval" if form == "expression" else "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return "unparsable"
    if _forbidden(tree):
        return "forbidden"
    if form == "expression":
        return Program(f"def f():\n    return ({question})\n", "f", ((),))
    body = list(tree.body)
    defs = [d for d in body if isinstance(d, ast.FunctionDef)]
    calls = body[len(defs):]
    if not (defs and calls and body[: len(defs)] == defs and all(_is_call(c) for c in calls)):
        return "unparsable"
    names = {c.value.func.id for c in calls}
    if len(names) != 1 or not names <= {d.name for d in defs}:
        return "unparsable"
    try:
        args = tuple(tuple(ast.literal_eval(a) for a in c.value.args) for c in calls)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return "unparsable"
    return Program(ast.unparse(ast.Module(body=defs, type_ignores=[])) + "\n", names.pop(), args)


def _is_call(node: ast.stmt) -> bool:
    """A top-level `name(literal, ...)` statement (no keywords, no starred arguments)."""
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
            and not node.value.keywords and not any(isinstance(a, ast.Starred) for a in node.value.args))


def execute(questions: list[str], *, timeout_s: float, max_output_chars: int,
            form: str = "expression") -> list[Execution]:
    """Validate each question's program (see the module docstring); run twice in the sandbox for determinism."""
    out: list[Execution | None] = [None] * len(questions)
    runnable, programs = [], []
    for i, q in enumerate(questions):
        parsed = parse_program(q, form)
        if isinstance(parsed, str):
            out[i] = Execution(parsed, None)
        else:
            runnable.append(i)
            programs.append(parsed)
    limits = Limits(timeout_s=timeout_s, cpu_s=max(1, int(timeout_s + 0.999)), memory_mb=512, processes=4,
                    output_chars=max_output_chars + 64)
    jobs = [Calls(p.source, p.entry_point, tuple((args, {}) for args in p.calls)) for p in programs]
    first = run_jobs(tuple(jobs), limits) if jobs else []
    second = run_jobs(tuple(jobs), limits) if jobs else []
    for i, p, a, b in zip(runnable, programs, first, second, strict=True):
        out[i] = _judge(a, b, len(p.calls), max_output_chars)
    return out  # type: ignore[return-value]


def _judge(a, b, calls: int, max_output_chars: int) -> Execution:
    """The first failing check over every call of both runs, or the values."""
    if a.status == "timeout" or b.status == "timeout":
        return Execution("timeout", None)
    va, vb = a.values or (), b.values or ()
    if len(va) != calls or len(vb) != calls or any(r[0] != "ok" for r in (*va, *vb)):
        return Execution("error", None)
    if any(x != y or type(x[1]) is not type(y[1]) for x, y in zip(va, vb, strict=True)):
        return Execution("nondeterministic", None)
    values = tuple(r[1] for r in va)
    if any(type(v) is not int for v in values):
        return Execution("not_an_answer", None)
    try:
        texts = [str(v) for v in values]
    except ValueError:  # more digits than int->str allows
        return Execution("output_too_long", None)
    if any(len(t) > max_output_chars for t in texts):
        return Execution("output_too_long", None)
    return Execution("ok", texts[0], values)
