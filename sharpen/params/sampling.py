"""The params of the stages that sample and score: `generate`, `verify` and `evaluate`, with the sampling
backend (`server`) and the Ray fan-out (`ray`) that generate and evaluate share.

Run: `sharpen params` validates these sections of params.yaml with the rest.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sharpen.params.section import _Section, known_or_plugin

VERIFIER_NAMES = ("exact_integer", "math_equiv", "unit_tests", "reasoning_gym")  # a round's; self-play adds its own


SERVER_BACKENDS = ("openai", "vllm-server")  # sampling through an OpenAI-compatible API


class ServerParams(_Section):
    """backend openai (servers a user runs) and vllm-server (engines the stage starts): the
    OpenAI-compatible `/v1/completions` API (sharpen/backends/openai.py, sharpen/backends/server.py)."""

    endpoints: tuple[str, ...] = Field((), description="openai: server URLs, e.g. http://gpu-1:8000/v1; prompts "
                                       "are spread over them, and a sample never depends on which one answered")
    model: str = Field("policy", min_length=1, description="the name every endpoint must list in /v1/models; policy: "
                       "sharpen-<first 12 of the policy's hash>, the name vllm-server serves it under")
    concurrency: int = Field(8, ge=1, le=4096, description="requests in flight over all endpoints")
    retries: int = Field(3, ge=0, le=100, description="tries after the first on a transient failure (connection, "
                         "timeout, HTTP 429/5xx), each on the next endpoint, with exponential backoff")
    timeout_s: float = Field(600.0, gt=0, allow_inf_nan=False, description="per request")
    api_key_env: str = Field("", description="the environment variable holding the servers' API key (never the key)")
    replicas: int = Field(1, ge=1, le=64, description="vllm-server: engines started (one per GPU, or CPU cores split)")
    vllm_env: str = Field(".venv-vllm", min_length=1, description="vllm-server: the vLLM environment (`make vllm`)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="vllm-server: the engines' weights and activations (vLLM's --dtype); on a CPU without "
        "native bf16 (no avx512_bf16/amx), float32 is faster")
    start_timeout_s: float = Field(900.0, gt=0, allow_inf_nan=False, description="vllm-server: wait for an engine")
    lifetime: Literal["loop", "stage"] = Field(
        "loop", description="vllm-server: loop: in a loop (python -m flows.loop) the engines outlive the stage and serve "
        "every stage of every round on the same base, a new LoRA policy loaded into them at run time "
        "(sharpen/backends/engines.py); stage: each stage starts and stops its own (always so outside a loop; "
        "choose it where training shares the GPU, which a loop's engine keeps)")


class SamplingParams(_Section):
    backend: Literal["hf", "vllm", "openai", "vllm-server"] = Field(
        "hf", description="hf: transformers in the stage | vllm: vLLM's offline engine in the stage's environment | "
        "openai: OpenAI-compatible servers at server.endpoints | vllm-server: `vllm serve` from server.vllm_env, "
        "started by the stage, or once per loop (server.lifetime)")
    server: ServerParams = ServerParams()

    @model_validator(mode="after")
    def _server_fits(self) -> SamplingParams:
        if self.backend == "openai" and not self.server.endpoints:
            raise ValueError("server.endpoints: backend openai samples from servers you run; list their URLs, "
                             "e.g. [http://localhost:8000/v1] (or use backend vllm-server to start vLLM here)")
        for url in self.server.endpoints:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"server.endpoints: {url!r} is not an http(s) URL")
        return self
    k: int = Field(8, ge=1, le=1024, description="samples per problem")
    temperature: float = Field(1.0, ge=0, le=10, description="0 means greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(8, ge=1)
    batch_size: int = Field(128, ge=1, description="prompts per forward batch (each expanded to k sequences)")
    tensor_parallel_size: int = Field(1, ge=1, description="vllm: GPUs one engine shards the model over")
    autocast: Literal["none", "bfloat16", "auto"] = Field(
        "none", description="hf: run generation under bf16 autocast | auto: only on a GPU or a CPU with native bf16 "
        "(avx512_bf16 or amx_bf16; without them bf16 is slower here, BENCHMARKS.md)")


class RayParams(_Section):
    """A stage's shards (generate's; evaluate's greedy and sampled ones) fanned out over a Ray cluster
    (sharpen/backends/fanout.py); the samples equal the stage's own process's."""

    address: str = Field("", description="the cluster (`ray start --head` prints it, e.g. 10.0.0.1:6379; auto: the "
                         "one this machine belongs to); empty: generate in the stage's own process")
    workers: int = Field(2, ge=1, le=4096, description="generation actors, each loading the policy; Ray spreads "
                         "them over the nodes")
    cpus_per_worker: float = Field(1.0, ge=0, allow_inf_nan=False)
    gpus_per_worker: float = Field(0.0, ge=0, allow_inf_nan=False)


class GenerateParams(SamplingParams):
    ray: RayParams = RayParams()
    problems_per_round: int = Field(0, ge=0, description="problems sampled from the pool each round; 0 = all")
    shard_size: int = Field(512, ge=1, description="problems per resumable shard")
    logprobs: bool = Field(False, description="record each sample's token ids and per-token log-probabilities under "
                           "the sampling policy (train.grpo.rollouts: round trains on them)")

    @model_validator(mode="after")
    def _logprobs_from_a_backend_that_has_them(self) -> GenerateParams:
        if self.logprobs and self.backend in SERVER_BACKENDS:
            raise ValueError(f"logprobs: backend {self.backend} does not take log-probabilities from a server; "
                             "use backend hf or vllm")
        return self


class JudgeParams(_Section):
    """`labels: judge`: the policy scores its own samples with a rubric (sharpen/judge.py)."""

    rubric: Literal["additive5"] = "additive5"
    threshold: int = Field(4, ge=1, le=5, description="a sample is correct when the judge gives it at least this")
    max_new_tokens: int = Field(64, ge=1)


class VerifyParams(_Section):
    """How samples are scored. `labels: majority` (TTRL) scores against each problem's majority
    answer over its k samples instead of the gold answer, which the round then never reads;
    `labels: judge` has the policy score its own samples (Self-Rewarding)."""

    verifier: str = Field("exact_integer", description="exact_integer | math_equiv | unit_tests | reasoning_gym, or "
                          "your own function by import path, module:function (sharpen/verifiers/registry.py)")
    labels: Literal["gold", "majority", "judge"] = "gold"
    answer_form: Literal["auto", "integer", "number", "expression", "latex"] = Field(
        "auto", description="math_equiv: the form an answer must take; auto = integer/number where the gold is one"
    )
    judge: JudgeParams = JudgeParams()
    reward_control: Literal["none", "random", "format_only"] = Field(
        "none", description="train on a control reward (sharpen/verifiers/controls.py): random (a coin flip at the "
        "observed pass rate) | format_only (an answer in the required form, whatever its value); held-out "
        "evaluation is never controlled. The no-verifier control is filter.select: all")

    @field_validator("verifier")
    @classmethod
    def _known_verifier(cls, value: str) -> str:
        return known_or_plugin(value, VERIFIER_NAMES, "verifier")

    @model_validator(mode="after")
    def _control_has_verdicts(self) -> VerifyParams:
        if self.reward_control != "none" and self.labels == "judge":
            raise ValueError("reward_control: a control replaces a verifier's verdicts; labels: judge has none "
                             "(use labels gold or majority)")
        return self


class EvaluateParams(SamplingParams):
    pass_k: tuple[int, ...] = Field((1, 8), description="k values reported as pass@k (each <= k)")
    shard_size: int = Field(0, ge=0, description="held-out problems per shard, each sampled with its own seed (0: one "
                            "shard); evaluate.ray sends the shards to a Ray cluster")
    ray: RayParams = RayParams()

    @model_validator(mode="after")
    def _pass_k_fit(self) -> EvaluateParams:
        if not self.pass_k or any(p < 1 or p > self.k for p in self.pass_k):
            raise ValueError(f"pass_k {list(self.pass_k)} must be non-empty values in [1, k={self.k}]")
        return self
