"""What a backend returns (a Completion per sample), the interface every backend has, and its out-of-memory error.

Its own module so the backends import it without importing the package that picks among them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from sharpen.errors import SharpenError


class GenerationOOM(SharpenError, RuntimeError):
    """Generation ran out of memory at the configured batch size; the message says what to lower."""


def is_out_of_memory(error: BaseException) -> bool:
    """torch's CUDA/CPU allocation failures and Python's MemoryError."""
    text = str(error).lower()
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or (
        "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
    )


class Completion(NamedTuple):
    text: str
    num_tokens: int
    finish_reason: str  # "stop" (end of sequence) or "length" (max_new_tokens reached)
    token_ids: tuple[int, ...] | None = None  # with logprobs=True: the completion's tokens (eos included)
    logprobs: tuple[float, ...] | None = None  # with logprobs=True: log pi_sample(token | prefix), per token


class Backend(Protocol):
    def generate(
        self,
        prompts: Sequence[str],
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        seed: int,
        on_progress: Callable[[int], None] | None = None,
        logprobs: bool = False,
    ) -> list[list[Completion]]: ...
