"""Exact integer match: the answer after the last `|` (or the whole completion) against the gold."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sharpen.verifiers.result import UnreadableReference, VerifyResult

_INTEGER = re.compile(r"-?\d+")
MAX_DIGITS = 512  # longer is not an answer (and Python refuses int() of over 4300 digits)


def extract_integer(completion: str) -> str | None:
    """The integer answer of a completion, normalised ("007" → "7"); None if it is not one.

    >>> extract_integer("8+7=15,5+6+1=12|125"), extract_integer(" 42 "), extract_integer("4 2")
    ('125', '42', None)
    """
    tail = completion.rsplit("|", 1)[-1].strip()
    if len(tail) > MAX_DIGITS or not _INTEGER.fullmatch(tail):
        return None
    return str(int(tail))


def gold_integer(reference: str) -> str:
    """A gold answer as `extract_integer` normalises an answer ("007" → "7"); an UnreadableReference if it
    is not an integer of at most MAX_DIGITS digits (no answer could match it).

    >>> gold_integer(" 007 "), gold_integer("-12")
    ('7', '-12')
    """
    text = reference.strip()
    if len(text.lstrip("+-")) > MAX_DIGITS:
        raise UnreadableReference(reference, f"exact_integer: the gold answer {text[:20]!r}... has {len(text):,} "
                                  f"characters; an answer has at most {MAX_DIGITS} digits")
    try:
        return str(int(text))
    except ValueError:
        why = f"exact_integer: the gold answer {text[:60]!r} is not an integer"
        raise UnreadableReference(reference, why) from None


def exact_integer(
    completions: Sequence[str], references: Sequence[str | None], *, prompts: Sequence[str] | None = None
) -> list[VerifyResult]:
    """Reward 1.0 when the extracted integer equals the reference, else 0.0."""
    if len(completions) != len(references):
        raise ValueError(f"exact_integer: {len(completions)} completions but {len(references)} references")
    results = []
    for completion, reference in zip(completions, references, strict=True):
        got = extract_integer(completion)
        if got is None:
            results.append(VerifyResult(None, 0.0, False, "unparseable"))
        elif reference is not None and got == gold_integer(reference):
            results.append(VerifyResult(got, 1.0, True, "ok"))
        else:
            results.append(VerifyResult(got, 0.0, False, "wrong"))
    return results
