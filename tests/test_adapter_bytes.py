"""A LoRA adapter trained twice from the same inputs is the same bytes, whatever each process's string
hashing (peft writes `target_modules` from a set; sharpen.models.canonical_adapter_config sorts it), so
its policy hash, its served name and its DVC entry do not change from run to run.

Run: `pytest tests/test_adapter_bytes.py`
"""

import os
import subprocess
import sys

TRAIN = """
import sys
from pathlib import Path
import polars as pl
from sharpen.io import hash_path
from sharpen.objectives.sft import train_sft
from sharpen.objectives.trainer import TrainerSettings
from sharpen.params.train import LoraParams

model, out = Path(sys.argv[1]), Path(sys.argv[2])
settings = TrainerSettings(lr=1e-3, lr_scheduler="constant", warmup_ratio=0.0, batch_size=2, seed=0, chat="never",
                           lora=LoraParams(r=4, alpha=8, target_modules=("q_proj", "v_proj")), base_dir=model)
examples = pl.DataFrame({"prompt": ["1+1=", "2+2=", "3+3=", "4+4="], "completion": ["2", "4", "6", "8"]})
train_sft(examples, model, out, settings, max_length=16)
print(hash_path(out))
"""


def _trained_hash(model_dir, out, hash_seed: str) -> str:
    env = os.environ | {"PYTHONHASHSEED": hash_seed, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", TRAIN, str(model_dir), str(out)], env=env, capture_output=True,
                          text=True, check=True)
    return proc.stdout.split()[-1]


def test_an_adapter_trained_under_two_hash_seeds_hashes_the_same(tiny_model_dir, tmp_path):
    # under these two seeds a set of {"q_proj", "v_proj"} iterates in opposite orders
    assert _trained_hash(tiny_model_dir, tmp_path / "a", "0") == _trained_hash(tiny_model_dir, tmp_path / "b", "3")
