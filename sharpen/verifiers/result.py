"""What a verifier returns for each item: the answer it read, the reward, correct or not, and why.

Its own module so the verifiers import it without importing the package that lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class VerifyResult(NamedTuple):
    extracted: str | None  # the answer read from the completion; None if none could be read
    reward: float  # in [0, 1]
    correct: bool
    reason: str  # one of sharpen.schemas.VERDICT_REASONS


Verifier = Callable[..., list[VerifyResult]]
