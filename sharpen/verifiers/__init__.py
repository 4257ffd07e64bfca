"""Verifiers: plain functions with one signature, a batch in and one result per item out.

    verifier(completions: Sequence[str], references: Sequence[str | None]) -> list[VerifyResult]

The same function scores samples for the filter and for evaluation. Later verifiers (math
equivalence, unit tests in the sandbox, majority vote, self-judge) are added to VERIFIERS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple


class VerifyResult(NamedTuple):
    extracted: str | None  # the answer read from the completion; None if none could be read
    reward: float  # in [0, 1]
    correct: bool
    reason: str  # one of sharpen.schemas.VERDICT_REASONS


Verifier = Callable[[Sequence[str], Sequence[str | None]], list[VerifyResult]]

from sharpen.verifiers.exact import exact_integer  # noqa: E402

VERIFIERS: dict[str, Verifier] = {"exact_integer": exact_integer}


def get_verifier(name: str) -> Verifier:
    try:
        return VERIFIERS[name]
    except KeyError:
        raise ValueError(f"verify.verifier: unknown verifier {name!r}; allowed: {', '.join(VERIFIERS)}") from None
