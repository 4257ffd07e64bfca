"""Math equivalence with math-verify: the completion's final answer against the gold, symbolically.

`math_equiv(completions, references)`: gold first, then parse, then verify (math-verify's own
order: `verify(gold, answer)` is not symmetric). `1/2`, `0.5`, `\\frac{2}{4}` and
`\\boxed{0.5}` all match a gold `\\frac{1}{2}`. A completion with nothing math-verify can
parse is recorded as `unparseable`, not as wrong.

math-verify bounds parsing and verification with `signal.alarm`, which works only on a
process's main thread, so batches are spread over worker processes (each runs its items on its
main thread) and each check has `TIMEOUT_S`. Small batches run in this process when it is on
its main thread. A gold answer that cannot be parsed is an error naming it.

`vote_key(extracted)` names an answer's value for majority voting (TTRL labels, maj@k), so `0.5`,
`1/2` and `\\frac{2}{4}` vote together: numbers are made exact rationals (`nsimplify`), other
expressions keep sympy's printed form; what math-verify cannot reread votes as written.

Throughput: `python benchmarks/verify_math.py` (BENCHMARKS.md).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from sharpen.verifiers import VerifyResult

TIMEOUT_S = 5  # per parse and per verify
IN_PROCESS_BELOW = 2048  # items; a pool of spawned processes costs ~1 s to start (BENCHMARKS.md)
CHUNK = 64


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str):
    from math_verify import parse

    # a bare gold is read as one LaTeX expression: unwrapped, `5\sqrt{2}` would parse as 5
    parsed = parse(gold if "$" in gold or "\\boxed" in gold else f"${gold}$", parsing_timeout=TIMEOUT_S)
    if not parsed:
        raise ValueError(f"math_equiv: the gold answer {gold!r} cannot be parsed by math-verify")
    return parsed


def _check(completion: str, reference: str | None) -> VerifyResult:
    from math_verify import parse, verify

    answer = parse(completion, parsing_timeout=TIMEOUT_S)
    if not answer:
        return VerifyResult(None, 0.0, False, "unparseable")
    extracted = str(answer[-1])
    if reference is None:
        return VerifyResult(extracted, 0.0, False, "wrong")
    if verify(_parse_gold(reference), answer, timeout_seconds=TIMEOUT_S):
        return VerifyResult(extracted, 1.0, True, "ok")
    return VerifyResult(extracted, 0.0, False, "wrong")


def _check_chunk(pairs: list[tuple[str, str | None]]) -> list[VerifyResult]:
    return [_check(c, r) for c, r in pairs]


def math_equiv(
    completions: Sequence[str], references: Sequence[str | None], *, workers: int | None = None
) -> list[VerifyResult]:
    """Reward 1.0 when math-verify finds the completion's answer equal to the reference."""
    if len(completions) != len(references):
        raise ValueError(f"math_equiv: {len(completions)} completions but {len(references)} references")
    pairs = list(zip(completions, references, strict=True))
    workers = workers or os.cpu_count() or 1
    on_main = threading.current_thread() is threading.main_thread()
    if on_main and (workers == 1 or len(pairs) < IN_PROCESS_BELOW):
        return _check_chunk(pairs)
    chunks = [pairs[i : i + CHUNK] for i in range(0, len(pairs), CHUNK)]
    # spawn: a fork of a process holding torch threads or a DVC lock is not safe
    with ProcessPoolExecutor(max(1, workers), mp_context=get_context("spawn")) as pool:
        return [r for chunk in pool.map(_check_chunk, chunks) for r in chunk]


def vote_key(extracted: str) -> str:
    """The value `extracted` (a `math_equiv` answer) votes as; equal numbers get equal keys."""
    import sympy
    from math_verify import parse

    on_main = threading.current_thread() is threading.main_thread()
    try:
        parsed = parse(f"${extracted}$", parsing_timeout=TIMEOUT_S if on_main else None)
        if not parsed or not isinstance(parsed[0], sympy.Basic):
            return extracted
        value = parsed[0].doit()
        if value.is_number:
            value = sympy.nsimplify(value, rational=True)
        return str(value)
    except Exception:  # noqa: BLE001 - math-verify and sympy raise many kinds; the written form still votes
        return extracted
