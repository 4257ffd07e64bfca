"""Unit tests: run the completion with the problem's tests in the sandbox; reward 1 when they pass.

The reference is `unit_test_reference(prompt, tests)` (JSON), built by `verify_frame` from a
problem's `prompt` and `tests`. The program is

- the prompt, the completion's first fenced code block and the tests, when the completion has
  one (an instruct model writing the whole function; it redefines the prompt's stub), else
- the prompt, the completion and the tests (a model continuing the prompt, HumanEval style).

Programs run in parallel across cores, each under `sharpen.sandbox` (see its limits).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from sharpen.sandbox import Limits, run_programs
from sharpen.verifiers import VerifyResult

_FENCE = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", re.DOTALL)
LIMITS = Limits()


def unit_test_reference(prompt: str, tests: str | None) -> str | None:
    return None if tests is None else json.dumps({"prompt": prompt, "tests": tests})


def program_for(completion: str, prompt: str, tests: str) -> str:
    block = _FENCE.search(completion)
    body = f"{prompt}\n    pass\n\n{block.group(1)}" if block else f"{prompt}{completion}"
    return f"{body}\n\n{tests}\n"


def unit_tests(
    completions: Sequence[str], references: Sequence[str | None], *, prompts: Sequence[str] | None = None
) -> list[VerifyResult]:
    """Reward 1.0 when the program built from the completion passes its tests in the sandbox."""
    if len(completions) != len(references):
        raise ValueError(f"unit_tests: {len(completions)} completions but {len(references)} references")
    programs = []
    for i, (completion, reference) in enumerate(zip(completions, references, strict=True)):
        if reference is None:
            raise ValueError(f"unit_tests: item {i} has no tests to run (its problem has no 'tests' field)")
        ref = json.loads(reference)
        programs.append(program_for(completion, ref["prompt"], ref["tests"]))
    results = []
    for outcome in run_programs(programs, LIMITS):
        if outcome.status == "passed":
            results.append(VerifyResult("passed", 1.0, True, "ok"))
        elif outcome.status == "timeout":
            results.append(VerifyResult("timeout", 0.0, False, "timeout"))
        else:
            last = outcome.stderr.strip().rsplit("\n", 1)[-1][:200]
            results.append(VerifyResult(f"failed (exit {outcome.exit_code}): {last}", 0.0, False, "wrong"))
    return results
