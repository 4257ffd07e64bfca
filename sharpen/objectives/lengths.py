"""How long a training sequence may be (`train.max_length`), decided from the data before a model loads.

An example's length is its rendered prompt (as generation renders it: sharpen.prompting) plus its
completion, in the policy's tokens, plus the EOS the trainer appends; a DPO pair counts its longer
side. TRL truncates longer sequences, and a prompt that fills `max_length` leaves no completion
token to learn from ("Dropping fully masked examples"), so:

- `max_length: null` (the default) sizes it from the data: the longest example, so nothing is cut;
- an explicit `max_length` below the longest example is refused, naming the key, the longest
  example and how many examples would be cut or dropped whole, before any model is loaded.

Run: `python -m stages.train ...` calls `fit_max_length` for `sft` and `dpo` (grpo has no max_length:
its prompts are whole and its completions are capped by `train.grpo.max_completion_length`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sharpen.errors import SharpenError


class LengthError(SharpenError, ValueError):
    """Training examples longer than `train.max_length`."""


def example_lengths(tokenizer, prompts: Sequence[str], completions: Sequence[str]) -> tuple[list[int], list[int]]:
    """(prompt tokens, whole-example tokens with the EOS) for each rendered prompt and its completion."""
    prompt_ids = tokenizer(list(prompts))["input_ids"]
    whole_ids = tokenizer([p + c for p, c in zip(prompts, completions, strict=True)])["input_ids"]
    return [len(ids) for ids in prompt_ids], [len(ids) + 1 for ids in whole_ids]


def fit_max_length(policy: Path, prompts: Sequence[str], completions: Sequence[Sequence[str]], ids: Sequence[str], *,
                   max_length: int | None, chat: str, what: str = "examples") -> int:
    """The max_length to train with: the longest example when `max_length` is None, else `max_length`
    itself once every example fits. `completions` holds, per side (SFT: one, DPO: chosen and
    rejected), one completion per prompt; `ids` names each example in an error."""
    from transformers import AutoTokenizer

    from sharpen.prompting import render

    if not prompts:
        return max_length or 8
    tokenizer = AutoTokenizer.from_pretrained(str(policy))
    rendered = render(tokenizer, list(prompts), chat)
    prompt_len, whole = None, [0] * len(rendered)
    for side in completions:
        prompt_len, lengths = example_lengths(tokenizer, rendered, side)
        whole = [max(a, b) for a, b in zip(whole, lengths, strict=True)]
    longest = max(range(len(whole)), key=whole.__getitem__)
    if max_length is None:
        return max(whole[longest], 8)
    over = sum(n > max_length for n in whole)
    if over:
        dropped = sum(n >= max_length for n in prompt_len)
        raise LengthError(
            f"train.max_length: {max_length} tokens, but {over} of {len(whole)} {what} are longer (the longest, "
            f"{ids[longest]!r}, is {whole[longest]} tokens: prompt {prompt_len[longest]}); they would be cut, and "
            f"{dropped} would lose their whole completion and be dropped. Raise train.max_length to at least "
            f"{whole[longest]}, or remove it to size it from the data")
    return max_length
