"""The transformers backend: batched sampling with left padding and the KV cache, seeded per batch.

Loads full-weight policies and LoRA adapters alike (`sharpen.models.load_causal_lm` merges an
adapter into its base once, at load).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from sharpen.backends import Completion, GenerationOOM, is_out_of_memory
from sharpen.models import load_causal_lm
from sharpen.prompting import render


class HFBackend:
    """`chat`: "auto" renders prompts in the tokenizer's chat template when it has one (sharpen.prompting)."""

    def __init__(
        self, model_path: Path | str, *, batch_size: int, chat: str = "auto", autocast: str = "none",
        device: str | None = None,
    ):  # fmt: skip
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, self.tokenizer = load_causal_lm(model_path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = model.to(self.device).eval()
        self.batch_size = batch_size
        self.chat = chat
        self.autocast = autocast == "bfloat16"  # 1.4x samples/s for SmolLM2 on CPU (BENCHMARKS.md)

    @torch.inference_mode()
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
    ) -> list[list[Completion]]:
        greedy = temperature == 0
        eos = self.tokenizer.eos_token_id
        out: list[list[Completion]] = []
        prompts = render(self.tokenizer, prompts, self.chat)
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start : start + self.batch_size]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            torch.manual_seed(seed * 1_000_003 + start)
            sampling = {} if greedy else {"temperature": temperature, "top_p": top_p, "top_k": 0}
            try:
                with torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16, enabled=self.autocast):
                    seqs = self.model.generate(
                        **enc,
                        do_sample=not greedy,
                        num_return_sequences=1 if greedy else n,
                        max_new_tokens=max_new_tokens,
                        pad_token_id=self.tokenizer.pad_token_id,
                        eos_token_id=eos,
                        **sampling,
                    )
            except (MemoryError, RuntimeError) as e:  # torch.OutOfMemoryError is a RuntimeError
                if not is_out_of_memory(e):
                    raise
                raise GenerationOOM(
                    f"out of memory sampling {len(batch)} prompts x {1 if greedy else n} sequences of up to "
                    f"{max_new_tokens} new tokens at once on {self.device} ({type(e).__name__}: {str(e)[:160]}). "
                    f"Lower `batch_size` in the generate/evaluate section of params.yaml (now {self.batch_size}), "
                    f"e.g. to {max(1, self.batch_size // 2)}; finished shards are kept"
                ) from None
            new = seqs[:, enc["input_ids"].shape[1] :].tolist()
            for i in range(len(batch)):
                rows = [new[i]] * n if greedy else new[i * n : (i + 1) * n]
                out.append([self._completion(tokens, eos) for tokens in rows])
            if on_progress:
                on_progress(len(batch) * n)
        return out

    def _completion(self, tokens: list[int], eos: int) -> Completion:
        if eos in tokens:
            tokens = tokens[: tokens.index(eos) + 1]
            reason = "stop"
        else:
            reason = "length"
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return Completion(text=text, num_tokens=len(tokens), finish_reason=reason)
