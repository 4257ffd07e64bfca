"""Generation backends: one interface, transformers (`hf`, CPU or GPU), vLLM's offline engine
(`vllm`, GPU), OpenAI-compatible servers (`openai`) and vLLM servers the stage starts (`vllm-server`).

    backend.generate(prompts, n=k, temperature=..., top_p=..., max_new_tokens=..., seed=..., logprobs=False)
        -> one list of n Completions per prompt, in prompt order

With `logprobs=True` each Completion also carries its token ids and, per token, the log-probability
the sampling policy gave it (log-softmax of logits / temperature: the quantity a GRPO trainer
computes for the policy it updates, so their ratio is the importance ratio of `rollouts: round`).

This is the shape of vLLM's offline `LLM.generate(prompts, SamplingParams(n=k, seed=...))`, so
the vLLM backend maps onto it directly. Seeding is per call: the same prompts, params and seed
give the same completions on the same machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
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


def load_backend(
    name: str, model_path: Path | str, *, batch_size: int, chat: str = "auto", tensor_parallel_size: int = 1,
    autocast: str = "none", logprobs: bool = False, server=None,
) -> Backend:
    """The backend `name` serving the policy at `model_path` (full weights or a LoRA adapter);
    `logprobs`: it will be asked for per-token log-probabilities (vLLM sets its engine up for them);
    `server`: the sampling section's `server` params (backends openai and vllm-server)."""
    if name == "hf":
        from sharpen.backends.hf import HFBackend

        return HFBackend(model_path, batch_size=batch_size, chat=chat, autocast=autocast)
    if name == "vllm":
        from sharpen.backends.vllm import VLLMBackend

        return VLLMBackend(model_path, batch_size=batch_size, chat=chat, tensor_parallel_size=tensor_parallel_size,
                           logprobs=logprobs)
    if name in ("openai", "vllm-server"):
        from sharpen.params import ServerParams

        from sharpen.backends.openai import OpenAIBackend, served_name
        from sharpen.io import hash_path

        s = server or ServerParams()
        model = served_name(hash_path(model_path)) if s.model == "policy" else s.model  # hashed once: weights can be GBs
        if name == "vllm-server":
            from sharpen.backends.server import start_vllm_servers

            endpoints = start_vllm_servers(model_path, replicas=s.replicas, env=s.vllm_env, timeout_s=s.start_timeout_s,
                                           tensor_parallel_size=tensor_parallel_size, dtype=s.dtype, name=model)
        else:
            endpoints = list(s.endpoints)
        return OpenAIBackend(model_path, endpoints=endpoints, model=model, concurrency=s.concurrency,
                             retries=s.retries, timeout_s=s.timeout_s, api_key_env=s.api_key_env, chat=chat)
    raise ValueError(f"generate.backend: unknown backend {name!r}; allowed: hf, vllm, openai, vllm-server")
