"""What a verifier returns for each item: the answer it read, the reward, correct or not, and why.

Its own module so the verifiers import it without importing the package that lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from sharpen.errors import SharpenError


class VerifyResult(NamedTuple):
    extracted: str | None  # the answer read from the completion; None if none could be read
    reward: float  # in [0, 1]
    correct: bool
    reason: str  # one of sharpen.schemas.VERDICT_REASONS


Verifier = Callable[..., list[VerifyResult]]


class VerifierError(SharpenError, ValueError):
    """A `verify.*` setting, or a user's verifier (by import path), that cannot score the round; the message
    names the key."""


class UnreadableReference(SharpenError, ValueError):
    """A reference (a problem's gold answer, tests or spec) its verifier cannot read: the problem's to fix,
    not the model's. `reference` is the item as the verifier got it, so `verify_frame` can name its problem."""

    def __init__(self, reference: str | None, why: str) -> None:
        super().__init__(reference, why)  # both in args: it crosses math_equiv's worker processes
        self.reference, self.why = reference, why

    def __str__(self) -> str:
        return self.why


def shown(value, limit: int = 80) -> str:
    """`repr(value)` cut to `limit` characters (as `f"{value!r:.80}"`); an integer Python will not print
    (over its 4300-digit limit, anywhere inside `value`) is described instead of raising."""
    try:
        text = repr(value)
    except ValueError:
        return f"<a {type(value).__name__} holding an integer of over 4300 digits>"
    return text[:limit]
