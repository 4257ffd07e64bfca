"""Samples/s of SmolLM2-135M-Instruct generation on this machine: fp32 against bf16 autocast,
batch sizes, and a LoRA policy merged into its base against the same adapter left unmerged.

Prompts are the SmolLM2 params' held-out questions ("What is a + b? Reply with only the number."),
k=4 samples at T=1.0, 16 new tokens, as `examples/params-smollm2.yaml` runs them.

Run: `python benchmarks/smollm2_generate.py [--prompts 64]` (converts the preset once, about 20 s)
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from sharpen.backends.hf import HFBackend  # noqa: E402
from sharpen.models import materialize  # noqa: E402
from sharpen.prompting import render  # noqa: E402


def rate(backend: HFBackend, prompts: list[str], k: int, *, bf16: bool = False) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        backend.generate(prompts, n=k, temperature=1.0, top_p=1.0, max_new_tokens=16, seed=0)
    return len(prompts) * k / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    prompts = [f"What is {10 + i % 90} + {11 + (7 * i) % 89}? Reply with only the number." for i in range(args.prompts)]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        materialize("smollm2-135m", base)
        rows = {}
        for bs in (16, 64):
            backend = HFBackend(base, batch_size=bs)
            rows[f"fp32, batch {bs}"] = rate(backend, prompts, args.k)
            rows[f"bf16 autocast, batch {bs}"] = rate(backend, prompts, args.k, bf16=True)
        # a LoRA adapter (untrained weights are enough for speed): merged at load vs left as peft layers
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)),
                                    LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
        adapter = Path(tmp) / "adapter"
        peft_model.save_pretrained(adapter)
        backend = HFBackend(base, batch_size=16)
        backend.tokenizer.save_pretrained(adapter)
        merged = HFBackend(adapter, batch_size=16)  # sharpen's way: merge_and_unload at load
        rows["LoRA merged at load, batch 16"] = rate(merged, prompts, args.k)
        unmerged = HFBackend(base, batch_size=16)
        from peft import PeftModel

        unmerged.model = PeftModel.from_pretrained(unmerged.model, str(adapter)).eval()
        rows["LoRA unmerged (peft layers), batch 16"] = rate(unmerged, prompts, args.k)
        assert render(backend.tokenizer, ["x"], "auto")[0].startswith("<|im_start|>")
    base_rate = rows["fp32, batch 16"]
    for name, r in rows.items():
        print(f"{name:40s} {r:6.1f} samples/s  {r / base_rate:5.2f}x")


if __name__ == "__main__":
    main()
