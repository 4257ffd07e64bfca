"""Math answers: the completion's one final answer, in the form the task asks for, against the gold.

`math_equiv(completions, references, prompts=..., answer_form="auto")` first reads the one final
answer and checks its form (`sharpen/verifiers/answers.py`): several candidates (disagreeing boxes,
answer statements or equation sides), a hedged or approximate answer, and, where a number is
asked for, a restated question (`37 * 6`) or any other unevaluated expression earn nothing, each
with its reason. Numbers are then compared exactly (`0.5` = `1/2` = `\\frac{1}{2}`).
The `expression` and `latex` forms compare with math-verify (gold first: `verify(gold, answer)`
is not symmetric), after refusing a copy of the prompt's expression, sets of candidates, and an
answer not in final form (`not_final`: an operation left undone that the gold itself does not
leave undone, `sharpen/verifiers/expressions.py`: `\\cos(\\pi/4)`, `\\sqrt{8}`, `\\int_0^1 2x\\,dx`); a
decimal math-verify's rounding accepts but that is not exactly the gold is an approximation
(`not_final`), and the other sides of an answer's equation must verify too (else `multiple`).
Nothing readable → `unparseable`; a parse or comparison that hits `TIMEOUT_S` → `timeout`.
`lenient_math_equiv` is math-verify alone (what this verifier accepted before answer forms),
kept only to measure how much a form-blind reward would have paid for (evaluate's `form_hack_share`).

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
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from multiprocessing import get_context

from sharpen.verifiers.result import UnreadableReference, VerifierError, VerifyResult
from sharpen.verifiers.answers import _BOXED, ANSWER_FORMS, classify, final_answer, gold_form, restates
from sharpen.verifiers.expressions import final_form, inexact

TIMEOUT_S = 5  # per parse and per verify
_PROSE = re.compile(r"^(?:[A-Za-z]{2,}[ ,:]+)+")  # leading words before an expression-form answer
IN_PROCESS_BELOW = 2048  # items; a pool of spawned processes costs ~1 s to start (BENCHMARKS.md)
CHUNK = 64


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str):
    from math_verify import parse

    # a bare gold is read as one LaTeX expression: unwrapped, `5\sqrt{2}` would parse as 5
    parsed = parse(gold if "$" in gold or "\\boxed" in gold else f"${gold}$", parsing_timeout=TIMEOUT_S)
    if not parsed:
        raise UnreadableReference(gold, f"math_equiv: the gold answer {_short(gold)} cannot be parsed by math-verify")
    return parsed


def _short(text: str, limit: int = 60) -> str:
    """A gold answer as an error shows it: quoted, a long one cut, with its length."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} characters)"


def _resolve_form(answer_form: str, reference: str | None, text: str) -> str:
    if answer_form != "auto":
        return answer_form
    if reference is not None:
        return gold_form(reference)
    # no gold (majority votes): a number stays a number, anything else is read as an expression
    return "number" if classify(text, "number", None).form in ("integer", "number") else "expression"


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start >= TIMEOUT_S * 0.95


def _check(completion: str, reference: str | None, prompt: str | None, answer_form: str) -> VerifyResult:
    result = _check_form(completion, reference, prompt, answer_form)
    # nothing was read: no extracted answer (it would vote in a majority)
    return result._replace(extracted=None) if result.reason in ("unparseable", "timeout") else result


def _check_form(completion: str, reference: str | None, prompt: str | None, answer_form: str) -> VerifyResult:
    from math_verify import parse, verify

    final = final_answer(completion)
    if final.reason:
        return VerifyResult(final.text, 0.0, False, final.reason)
    text = final.text
    form = _resolve_form(answer_form, reference, text)
    if form in ("integer", "number"):
        found = classify(text, form, prompt)
        if found.form not in ("integer", "number"):
            return VerifyResult(text, 0.0, False, found.form)
        extracted = found.literal
        if reference is None:
            return VerifyResult(extracted, 0.0, False, "wrong")
        ok = found.value == _gold_value(reference, form)
        return VerifyResult(extracted, float(ok), ok, "ok" if ok else "wrong")
    if form == "latex" and not _BOXED.search(completion):
        return VerifyResult(None, 0.0, False, "unparseable")
    if restates(text, prompt):
        return VerifyResult(text, 0.0, False, "restated")
    math_text = _PROSE.sub("", text) or text  # "So we get 5\\sqrt{2}": the words are not the answer
    answer, slow = _timed(parse, f"${math_text}$", parsing_timeout=TIMEOUT_S)  # a bare `5\\sqrt{2}` would read as 5
    if not answer:
        return VerifyResult(text, 0.0, False, "timeout" if slow else "unparseable")
    extracted = str(answer[-1])
    undone = _bounded(final_form, math_text, answer[0])
    if undone is None:
        return VerifyResult(extracted, 0.0, False, "timeout")
    if reference is None:
        return VerifyResult(extracted, 0.0, False, "not_final" if undone else "wrong")
    gold = _parse_gold(reference)
    if undone - _gold_undone(reference):  # an operation left undone that the gold itself does not leave
        return VerifyResult(extracted, 0.0, False, "not_final")
    if _is_several(answer[0]) and not _is_several(gold[0]):
        return VerifyResult(extracted, 0.0, False, "multiple")
    ok, slow = _timed(verify, gold, answer, timeout_seconds=TIMEOUT_S)
    if slow and not ok:
        return VerifyResult(extracted, 0.0, False, "timeout")
    approximate = _bounded(inexact, gold[0], answer[0]) if ok else False  # a decimal math-verify's rounding accepts
    if approximate is not False:
        return VerifyResult(extracted, 0.0, False, "timeout" if approximate is None else "not_final")
    if ok and not all(_same(answer, side) for side in final.sides):  # `x = 0.7 = \frac{\sqrt{2}}{2}`
        return VerifyResult(extracted, 0.0, False, "multiple")
    return VerifyResult(extracted, float(ok), ok, "ok" if ok else "wrong")


def _bounded(fn, *args):
    """fn(*args) within TIMEOUT_S (None: it ran out); sympy's work on an answer has no bound of its own."""
    from math_verify.errors import TimeoutException
    from math_verify.utils import timeout

    try:
        return timeout(TIMEOUT_S)(fn)(*args)
    except TimeoutException:
        return None


@functools.lru_cache(maxsize=4096)
def _gold_undone(reference: str) -> frozenset[str]:
    """The kinds of operation the gold itself leaves undone (all of them, where judging it runs out)."""
    found = _bounded(final_form, reference.strip().strip("$"), _parse_gold(reference)[0])
    return frozenset({"operator", "function", "power", "arithmetic"}) if found is None else found


def _same(answer, side: str) -> bool:
    """Another side of the answer's equation has the answer's value (math-verify)."""
    from math_verify import parse, verify

    parsed = parse(f"${_PROSE.sub('', side.strip()) or side}$", parsing_timeout=TIMEOUT_S)
    return bool(parsed) and verify(answer, parsed, timeout_seconds=TIMEOUT_S)


def _is_several(value) -> bool:
    """A set, interval or list of candidates (`\\pm 5`, `4, 5`, `5 \\text{ or } 6`)."""
    import sympy

    return isinstance(value, (sympy.Set, set, frozenset, list, tuple)) and not (
        isinstance(value, sympy.FiniteSet) and len(value) == 1
    )


@functools.lru_cache(maxsize=4096)
def _gold_value(reference: str, form: str) -> Fraction:
    found = classify(reference, "number", None)
    if found.form not in ("integer", "number") or (form == "integer" and found.form != "integer"):
        raise UnreadableReference(reference, f"verify.answer_form: {form!r} needs gold answers that are {form}s; "
                                  f"{_short(reference)} is not")
    return found.value


def _check_chunk(items: list[tuple[str, str | None, str | None, str]]) -> list[VerifyResult]:
    return [_check(*item) for item in items]


def math_equiv(
    completions: Sequence[str], references: Sequence[str | None], *, prompts: Sequence[str] | None = None,
    answer_form: str = "auto", workers: int | None = None,
) -> list[VerifyResult]:
    """Reward 1.0 when the completion's one final answer, in the task's form, equals the reference."""
    if len(completions) != len(references):
        raise ValueError(f"math_equiv: {len(completions)} completions but {len(references)} references")
    if answer_form not in ANSWER_FORMS:
        raise VerifierError(f"verify.answer_form: unknown {answer_form!r}; allowed: {', '.join(ANSWER_FORMS)}")
    prompts = [None] * len(completions) if prompts is None else list(prompts)
    items = [(c, r, p, answer_form) for c, r, p in zip(completions, references, prompts, strict=True)]
    # numbers are checked by exact arithmetic (thousands a second); only math-verify's items are worth a pool
    symbolic = sum(answer_form in ("expression", "latex") or (answer_form == "auto" and (r is None or _form_of(r) == "expression"))
                   for r in references)
    return _map(_check_chunk, items, workers, heavy=symbolic)


def _lenient_chunk(pairs: list[tuple[str, str]]) -> list[bool]:
    from math_verify import parse, verify

    out = []
    for completion, reference in pairs:
        answer = parse(completion, parsing_timeout=TIMEOUT_S)
        out.append(bool(answer) and verify(_parse_gold(reference), answer, timeout_seconds=TIMEOUT_S))
    return out


def lenient_math_equiv(completions: Sequence[str], references: Sequence[str], *, workers: int | None = None) -> list[bool]:
    """What math-verify alone accepts (any expression equal to the gold, its last candidate): for
    monitoring only, to count the answers a form-blind reward would have paid for."""
    return _map(_lenient_chunk, list(zip(completions, references, strict=True)), workers)


@functools.lru_cache(maxsize=65536)
def _form_of(reference: str) -> str:
    return gold_form(reference)


def _map(fn, items: list, workers: int | None, heavy: int | None = None) -> list:
    """fn over items: here when on the main thread and under IN_PROCESS_BELOW `heavy` items (default:
    all), else across spawned worker processes."""
    workers = workers or os.cpu_count() or 1
    on_main = threading.current_thread() is threading.main_thread()
    if on_main and (workers == 1 or (len(items) if heavy is None else heavy) < IN_PROCESS_BELOW):
        return fn(items)
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    # spawn: a fork of a process holding torch threads or a DVC lock is not safe
    with ProcessPoolExecutor(max(1, workers), mp_context=get_context("spawn")) as pool:
        return [r for chunk in pool.map(fn, chunks) for r in chunk]


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
