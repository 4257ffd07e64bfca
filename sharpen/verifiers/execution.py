"""Unit tests: reward 1 only when the program's outputs are right, judged outside its process.

The reference is `unit_test_reference(prompt, tests)` (JSON), built by `verify_frame` from a
problem's `prompt` and `tests`. The program is the prompt plus the completion's first fenced code
block, when it has one (an instruct model writing the whole function), else the prompt plus the
completion (a model continuing the prompt, HumanEval style). A problem's `tests` is either

- **input/output pairs** (JSON): `{"entry_point": "add", "cases": [{"input": "(2, 3)", "output": "5"}],
  "atol": 1e-6}`, each input the Python literal of the argument tuple (optional `"kwargs"`: a dict
  literal), each output a Python literal (read with `ast.literal_eval`: data, never code). The
  sandbox calls the function on each input and returns the results as data; they are compared
  here with **type-strict** equality: same types all the way down (`True` is not `1`, a tuple is
  not a list), floats within `atol` (NaN equals NaN), dicts by keys, sets as sets; or
- **test code** (anything else, e.g. HumanEval's `check`): run in a process of its own against
  proxies of the program's functions (`sharpen.sandbox.Tests`); a pass means that process ran
  every test to its end and exited 0. The program's process never sees the tests and holds no
  secret that would mark a pass; its results reach the tests as fresh builtins.

What a pass means: on these inputs, the function returned these values (or the tests' own
asserts held on its returned values). What it cannot mean: that the function is correct on other
inputs, or that it did not special-case the tests' inputs.

Programs run in parallel across cores, each under `sharpen.sandbox` (see its limits).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Sequence

from sharpen.sandbox import Calls, Limits, Outcome, Tests, run_jobs
from sharpen.verifiers.result import UnreadableReference, VerifyResult, shown

CODE_FENCE = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", re.DOTALL)
LIMITS = Limits()


def unit_test_reference(prompt: str, tests: str | None) -> str | None:
    return None if tests is None else json.dumps({"prompt": prompt, "tests": tests})


def program_for(completion: str, prompt: str) -> str:
    block = CODE_FENCE.search(completion)
    return f"{prompt}\n    pass\n\n{block.group(1)}" if block else f"{prompt}{completion}"


def io_cases(tests: str) -> dict | None:
    """The input/output spec in a problem's `tests`, checked; None when `tests` is test code."""
    try:
        spec = json.loads(tests)
    except ValueError:
        return None
    if not isinstance(spec, dict) or "cases" not in spec:
        return None
    if not isinstance(spec.get("entry_point"), str) or not spec["entry_point"].isidentifier():
        raise ValueError("tests.entry_point: the name of the function to call (an identifier)")
    if not isinstance(spec["cases"], list) or not spec["cases"]:
        raise ValueError("tests.cases: a non-empty list of {input, output}")
    cases = []
    for i, case in enumerate(spec["cases"]):
        try:
            args = ast.literal_eval(case["input"])
            kwargs = ast.literal_eval(case.get("kwargs", "{}"))
            expected = ast.literal_eval(case["output"])
        except (KeyError, TypeError, ValueError, SyntaxError, MemoryError, RecursionError) as e:
            raise ValueError(f"tests.cases[{i}]: input/output must be Python literals ({type(e).__name__}: {e})") from None
        if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict):
            raise ValueError(f"tests.cases[{i}].input: the literal of the argument tuple, e.g. \"(2, 3)\"")
        cases.append((tuple(args), kwargs, expected))
    atol = spec.get("atol", 1e-6)
    if not isinstance(atol, (int, float)) or not 0 <= atol < math.inf:
        raise ValueError("tests.atol: a finite tolerance >= 0")
    return {"entry_point": spec["entry_point"], "cases": cases, "atol": float(atol)}


def same(expected, got, atol: float = 1e-6) -> bool:
    """Type-strict equality of two data values (see the module docstring)."""
    if type(expected) is not type(got):
        return False
    if type(expected) is float:
        return (math.isnan(expected) and math.isnan(got)) or expected == got or abs(expected - got) <= atol
    if type(expected) is complex:
        return same(expected.real, got.real, atol) and same(expected.imag, got.imag, atol)
    if type(expected) in (list, tuple):
        return len(expected) == len(got) and all(same(a, b, atol) for a, b in zip(expected, got, strict=True))
    if type(expected) is dict:
        return expected.keys() == got.keys() and all(same(v, got[k], atol) for k, v in expected.items())
    return expected == got  # None, bool, int, str, bytes, set, frozenset: builtins compare exactly


def outcome_verdict(outcome: Outcome, spec: dict | None) -> VerifyResult:
    if outcome.status == "timeout":
        return VerifyResult("timeout", 0.0, False, "timeout")
    if spec is None:
        if outcome.status == "passed":
            return VerifyResult("passed", 1.0, True, "ok")
        why = (outcome.tests_stderr or outcome.stderr).strip().rsplit("\n", 1)[-1][:200]
        return VerifyResult(f"failed (exit {outcome.exit_code}): {why}", 0.0, False, "wrong")
    values = outcome.values or ()
    if outcome.status != "passed" or len(values) != len(spec["cases"]):
        why = outcome.stderr.strip().rsplit("\n", 1)[-1][:200]
        return VerifyResult(f"failed: {len(values)} of {len(spec['cases'])} cases answered; {why}", 0.0, False, "wrong")
    for i, ((_, _, expected), reply) in enumerate(zip(spec["cases"], values, strict=True)):
        if reply[0] != "ok":
            return VerifyResult(f"case {i}: {reply[0]} {shown(reply[1:], 200)}", 0.0, False, "wrong")
        if not same(expected, reply[1], spec["atol"]):  # what the program returned may be too big to print
            return VerifyResult(f"case {i}: expected {shown(expected)} got {shown(reply[1])}", 0.0, False, "wrong")
    return VerifyResult("passed", 1.0, True, "ok")


def unit_tests(
    completions: Sequence[str], references: Sequence[str | None], *, prompts: Sequence[str] | None = None
) -> list[VerifyResult]:
    """Reward 1.0 when the program built from the completion passes its problem's tests (see above)."""
    if len(completions) != len(references):
        raise ValueError(f"unit_tests: {len(completions)} completions but {len(references)} references")
    jobs, specs = [], []
    for i, (completion, reference) in enumerate(zip(completions, references, strict=True)):
        if reference is None:
            raise UnreadableReference(None, "unit_tests: it has no tests to run (no 'tests' field)")
        ref = json.loads(reference)
        program = program_for(completion, ref["prompt"])
        try:
            spec = io_cases(ref["tests"])
        except ValueError as e:
            raise UnreadableReference(reference, f"unit_tests: its tests cannot be read: {e}") from None
        specs.append(spec)
        if spec is None:
            jobs.append(Tests(program, ref["prompt"], ref["tests"]))
        else:
            jobs.append(Calls(program, spec["entry_point"], [(args, kwargs) for args, kwargs, _ in spec["cases"]]))
    return [outcome_verdict(o, s) for o, s in zip(run_jobs(jobs, LIMITS), specs, strict=True)]
