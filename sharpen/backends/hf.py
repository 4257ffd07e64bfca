"""The transformers backend: batched sampling with left padding and the KV cache, seeded per batch.

Loads full-weight policies and LoRA adapters alike (`sharpen.models.load_causal_lm` merges an
adapter into its base once, at load).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from sharpen.backends.completion import Completion, GenerationOOM, is_out_of_memory
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
        self.autocast = autocast == "bfloat16" or (autocast == "auto" and native_bf16(self.device))

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
        logprobs: bool = False,
    ) -> list[list[Completion]]:
        greedy = temperature == 0
        if logprobs and greedy:
            raise ValueError("generate.logprobs: log-probabilities of a sampling policy need temperature > 0")
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
            prompt_len = enc["input_ids"].shape[1]
            new = seqs[:, prompt_len:].tolist()
            completions = [self._completion(tokens, eos) for tokens in new]
            if logprobs:
                completions = self._with_logprobs(seqs, enc["attention_mask"].repeat_interleave(n, dim=0), completions,
                                                  temperature)
            for i in range(len(batch)):
                out.append([completions[i]] * n if greedy else completions[i * n : (i + 1) * n])
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
        return Completion(text=text, num_tokens=len(tokens), finish_reason=reason, token_ids=tuple(tokens))

    def _with_logprobs(
        self, seqs: torch.Tensor, prompt_mask: torch.Tensor, completions: list[Completion], temperature: float
    ) -> list[Completion]:
        """Each completion's per-token log pi(token | prefix) from one forward pass over the sampled
        sequences, with the positions generation used (counted from the first real token)."""
        prompt_len = prompt_mask.shape[1]
        new_mask = torch.zeros(seqs.shape[0], seqs.shape[1] - prompt_len, dtype=prompt_mask.dtype, device=seqs.device)
        for row, c in enumerate(completions):
            new_mask[row, : c.num_tokens] = 1
        mask = torch.cat([prompt_mask, new_mask], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self.model(input_ids=seqs, attention_mask=mask, position_ids=positions).logits
        logp = torch.log_softmax(logits[:, prompt_len - 1 : -1].float() / temperature, dim=-1)
        chosen = logp.gather(-1, seqs[:, prompt_len:].unsqueeze(-1)).squeeze(-1).tolist()
        return [c._replace(logprobs=tuple(chosen[row][: c.num_tokens])) for row, c in enumerate(completions)]


def native_bf16(device: str, cpuinfo: str | None = None) -> bool:
    """Whether bf16 arithmetic is native on `device`: any CUDA device, or a CPU whose flags include
    avx512_bf16 or amx_bf16 (without them, bf16 autocast ran at 0.43x fp32 here: BENCHMARKS.md)."""
    if device.startswith("cuda"):
        return True
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set(cpuinfo.split())
    return "avx512_bf16" in flags or "amx_bf16" in flags
