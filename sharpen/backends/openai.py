"""The OpenAI-compatible backend (`generate.backend: openai`): samples from servers a user already
runs (vLLM's `vllm serve`, SGLang, llama.cpp's server), or from the vLLM engines the stage starts
itself (`backend: vllm-server`, sharpen/backends/server.py), over their `/v1/completions` API.

- Prompts are rendered with the policy's tokenizer and chat template exactly as the other
  backends and SFT render them (sharpen.prompting), and sent as token ids, so the server reads
  the very tokens the transformers backend would.
- One request per prompt, carrying its own seed (derived from the call's seed and the prompt's
  index, as the vLLM backend does) and `n` samples; greedy asks for one and repeats it. A
  prompt's samples are a function of the request alone, so they do not depend on how many
  endpoints there are, which one answered, or in what order answers came back.
- Requests go out on `generate.server.concurrency` threads in all (bounded in-flight work),
  prompt i first to endpoint i mod N; a transient failure (connection refused or reset, a timeout,
  HTTP 429/5xx) is retried `generate.server.retries` times with exponential backoff, each try on
  the next endpoint. After the last one the stage stops with one line naming the URL.
- Before any request, every endpoint's `/v1/models` must list the model the round expects
  (`generate.server.model`; `policy` means `sharpen-<first 12 of the policy's hash>`, the name
  `vllm-server` serves the policy under): an endpoint serving another model is refused by name.
- `num_tokens` is the completion's length under the policy's tokenizer, plus the end-of-sequence
  token when the server says it stopped (OpenAI's API gives no per-choice token count).
  Per-token log-probabilities are not taken from a server (`generate.logprobs` is refused here):
  what a server reports depends on how it was started.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from sharpen.backends.completion import Completion
from sharpen.backends.vllm import request_seed
from sharpen.errors import SharpenError
from sharpen.prompting import render

TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)


class EndpointError(SharpenError, RuntimeError):
    """An endpoint that cannot serve the round: unreachable after retries, or serving another model."""


def served_name(policy_hash: str) -> str:
    """The model name the round's policy is served under (`generate.server.model: policy`)."""
    return f"sharpen-{policy_hash[:12]}"


def _base(url: str) -> str:
    """An endpoint as given (`http://host:8000` or `http://host:8000/v1`) → its `/v1` base."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class OpenAIBackend:
    def __init__(
        self, model_path: Path | str, *, endpoints: Sequence[str], model: str, concurrency: int = 8, retries: int = 3,
        timeout_s: float = 600.0, api_key_env: str = "", chat: str = "auto", backoff_s: float = 0.5,
    ):  # fmt: skip
        import httpx

        from sharpen.io import hash_path
        from sharpen.models import adapter_base, is_adapter

        if not endpoints:
            raise ValueError("generate.server.endpoints: backend openai needs at least one URL, "
                             "e.g. http://localhost:8000/v1")
        self.endpoints = [_base(e) for e in endpoints]
        self.model = served_name(hash_path(model_path)) if model == "policy" else model
        self.concurrency, self.retries, self.backoff_s, self.chat = concurrency, retries, backoff_s, chat
        from transformers import AutoTokenizer

        own_tokenizer = (Path(model_path) / "tokenizer_config.json").exists()
        tokenizer_dir = adapter_base(model_path) if is_adapter(model_path) and not own_tokenizer else model_path
        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        if api_key_env and not os.environ.get(api_key_env):
            raise ValueError(f"generate.server.api_key_env: the environment variable {api_key_env} is not set")
        headers = {"Authorization": f"Bearer {os.environ[api_key_env]}"} if api_key_env else {}
        self.client = httpx.Client(timeout=timeout_s, headers=headers,
                                   limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency))
        for endpoint in self.endpoints:
            self._check_model(endpoint)

    def _request(self, method: str, endpoint_index: int, path: str, **kwargs):
        """The JSON reply, retrying transient failures on the following endpoints."""
        import httpx

        last = ""
        for attempt in range(self.retries + 1):
            url = self.endpoints[(endpoint_index + attempt) % len(self.endpoints)] + path
            try:
                reply = self.client.request(method, url, **kwargs)
            except httpx.TransportError as e:
                last = f"{url}: {type(e).__name__}: {str(e)[:120]}"
            else:
                if reply.status_code < 400:
                    return reply.json()
                if reply.status_code not in TRANSIENT_STATUS:
                    raise EndpointError(f"generate.server.endpoints: {url} answered HTTP {reply.status_code}: "
                                        f"{reply.text[:200]}")
                last = f"{url}: HTTP {reply.status_code} {reply.text[:120]}"
            if attempt < self.retries:
                time.sleep(min(self.backoff_s * 2**attempt, 8.0))
        raise EndpointError(f"generate.server.endpoints: no answer after {self.retries + 1} tries "
                            f"(generate.server.retries: {self.retries}); last: {last}")

    def _check_model(self, endpoint: str) -> None:
        index = self.endpoints.index(endpoint)
        served = [m.get("id") for m in self._request("GET", index, "/models").get("data", [])]
        if self.model not in served:
            raise EndpointError(f"generate.server.model: {endpoint} serves {served}, not the round's policy "
                                f"{self.model!r} (serve it under that name, e.g. `vllm serve <policy> "
                                f"--served-model-name {self.model}`)")

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
        if logprobs:
            raise ValueError("generate.logprobs: the openai backend does not take log-probabilities from a server; "
                             "use backend hf or vllm for `train.grpo.rollouts: round`")
        greedy = temperature == 0
        rendered = render(self.tokenizer, prompts, self.chat)
        token_ids = self.tokenizer(rendered, add_special_tokens=False)["input_ids"]

        def one(i: int) -> list[Completion]:
            body = {"model": self.model, "prompt": token_ids[i], "n": 1 if greedy else n, "max_tokens": max_new_tokens,
                    "temperature": 0.0 if greedy else temperature, "top_p": 1.0 if greedy else top_p,
                    "seed": request_seed(seed, i)}
            choices = sorted(self._request("POST", i, "/completions", json=body)["choices"], key=lambda c: c["index"])
            rows = [self._completion(c) for c in choices]
            rows = rows[:1] * n if greedy else rows
            if len(rows) != n:
                raise EndpointError(f"generate.server.endpoints: asked for {n} samples of a prompt, got {len(rows)}")
            return rows

        out: list[list[Completion] | None] = [None] * len(prompts)
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            futures = {pool.submit(one, i): i for i in range(len(prompts))}
            for future in as_completed(futures):
                out[futures[future]] = future.result()
                if on_progress:
                    on_progress(n)
        finally:  # on the first failure, requests not yet sent are not sent
            pool.shutdown(wait=True, cancel_futures=True)
        return out  # type: ignore[return-value]

    def _completion(self, choice: dict) -> Completion:
        text = choice.get("text") or ""
        stopped = choice.get("finish_reason") != "length"
        num_tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) + int(stopped)
        return Completion(text=text, num_tokens=num_tokens, finish_reason="stop" if stopped else "length")
