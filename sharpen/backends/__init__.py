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

from pathlib import Path

from sharpen.backends.completion import Backend, Completion, GenerationOOM, is_out_of_memory  # noqa: F401


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
            from sharpen.backends.engines import in_loop, loop_engines
            from sharpen.backends.server import start_vllm_servers

            if s.lifetime == "loop" and in_loop():  # the loop's engines, started once (sharpen/backends/engines.py)
                endpoints = loop_engines(model_path, model, replicas=s.replicas, env=s.vllm_env,
                                         timeout_s=s.start_timeout_s, tensor_parallel_size=tensor_parallel_size,
                                         dtype=s.dtype)
            else:
                endpoints = [e.url for e in start_vllm_servers(
                    model_path, replicas=s.replicas, env=s.vllm_env, timeout_s=s.start_timeout_s,
                    tensor_parallel_size=tensor_parallel_size, dtype=s.dtype, name=model)]
        else:
            endpoints = list(s.endpoints)
        return OpenAIBackend(model_path, endpoints=endpoints, model=model, concurrency=s.concurrency,
                             retries=s.retries, timeout_s=s.timeout_s, api_key_env=s.api_key_env, chat=chat)
    raise ValueError(f"generate.backend: unknown backend {name!r}; allowed: hf, vllm, openai, vllm-server")
