"""What the model reads: a problem's prompt, in the model's chat template when it has one.

Generation, evaluation and SFT all go through `render`, so a policy is trained on exactly the
text it is sampled from. `task.chat: auto` applies the tokenizer's chat template (one user turn,
generation prompt added) when the tokenizer has one; the tiny model has none and reads the raw
prompt. `task.chat: never` always uses the raw prompt.
"""

from __future__ import annotations

from collections.abc import Sequence


def uses_chat(tokenizer, chat: str) -> bool:
    return chat == "auto" and getattr(tokenizer, "chat_template", None) is not None


def render(tokenizer, prompts: Sequence[str], chat: str) -> list[str]:
    """The text the model continues for each prompt."""
    if not uses_chat(tokenizer, chat):
        return list(prompts)
    return [
        tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
        for p in prompts
    ]
