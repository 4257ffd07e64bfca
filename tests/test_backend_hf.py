"""The transformers backend: shape, seeding, greedy, finish reasons, on a tiny local model.

Run: `pytest tests/test_backend_hf.py`
"""

import pytest

from sharpen.backends.hf import HFBackend

PROMPTS = ["1+2=", "34+5=", "678+90="]


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return HFBackend(tiny_model_dir, batch_size=2)


def gen(backend, **kw):
    args = dict(n=3, temperature=1.0, top_p=1.0, max_new_tokens=5, seed=11) | kw
    return backend.generate(PROMPTS, **args)


def test_k_completions_per_prompt_in_order(backend):
    out = gen(backend)
    assert [len(o) for o in out] == [3, 3, 3]


def test_same_seed_same_samples(backend):
    assert gen(backend) == gen(backend)


def test_other_seed_other_samples(backend):
    assert gen(backend) != gen(backend, seed=12)


def test_greedy_repeats_one_decode(backend):
    out = gen(backend, temperature=0.0)
    assert all(len(set(o)) == 1 for o in out)


def test_batching_does_not_change_greedy(tiny_model_dir, backend):
    one_by_one = HFBackend(tiny_model_dir, batch_size=1)
    assert gen(one_by_one, temperature=0.0, n=1) == gen(backend, temperature=0.0, n=1)


def test_finish_reason_and_token_count(backend):
    for outs in gen(backend, max_new_tokens=2):
        for c in outs:
            assert c.finish_reason in ("stop", "length")
            assert 1 <= c.num_tokens <= 2
            if c.finish_reason == "length":
                assert c.num_tokens == 2


@pytest.mark.parametrize("device, flags, native", [
    ("cuda:0", "", True),
    ("cpu", "fpu sse avx2 avx512f avx512_vnni", False),
    ("cpu", "fpu avx512f avx512_bf16", True),
    ("cpu", "fpu amx_tile amx_bf16", True),
])
def test_autocast_auto_uses_bf16_only_where_it_is_native(device, flags, native):
    from sharpen.backends.hf import native_bf16

    assert native_bf16(device, cpuinfo=f"processor : 0\nflags : {flags}\n") is native
