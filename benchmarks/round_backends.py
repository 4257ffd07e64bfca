"""A whole SmolLM2 round, generation and evaluation on vLLM engines (`vllm-server`) against the
transformers backend (`hf`), one command: two fresh clones with examples/params-smollm2.yaml that
differ only in `generate.backend` and `evaluate.backend` (vllm-server: `server.dtype: float32`, one
engine, the stage starting and stopping it); each runs `dvc repro` (base, base evaluation, one
round). Prints every stage's wall time (its metrics.json `wall_s`), the whole `dvc repro`, the
ratio vllm-server / hf, and the held-out accuracies, so the two rounds can be seen to do the same work.
Needs the vLLM environment (`make vllm`) and the SmolLM2 preset (make setup installs it).

Run: `python benchmarks/round_backends.py` (about 30 minutes on 2 CPU cores; nothing else running)
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from tests.workspace import run  # noqa: E402

STAGES = ["base", "base/evaluate", "round/generate", "round/verify", "round/filter", "round/train", "round/evaluate"]


def one_round(tmp: Path, backend: str, vllm_env: Path) -> dict:
    ws = tmp / backend
    run(PROJECT, "git", "clone", "-q", str(PROJECT), str(ws))
    raw = yaml.safe_load((ws / "examples/params-smollm2.yaml").read_text())
    for section in ("generate", "evaluate"):
        raw[section]["backend"] = backend
        if backend == "vllm-server":  # fp32: this CPU has no native bf16 (BENCHMARKS.md, vLLM engines)
            raw[section]["server"] = {"vllm_env": str(vllm_env), "dtype": "float32"}
    (ws / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    run(ws, "git", "commit", "-qam", f"SmolLM2 params, backend {backend}")
    start = time.perf_counter()
    run(ws, "dvc", "repro")
    total = time.perf_counter() - start
    metrics = {s: json.loads((ws / "data" / s / "metrics.json").read_text()) for s in STAGES}
    return {"total_s": total, "stages": {s: m["wall_s"] for s, m in metrics.items()},
            "base_greedy": metrics["base/evaluate"]["greedy_accuracy"],
            "round_greedy": metrics["round/evaluate"]["greedy_accuracy"],
            "round_pass@1": metrics["round/evaluate"]["pass@1"], "kept": metrics["round/filter"]["kept"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default=str(PROJECT / ".venv-vllm"), help="the vLLM environment")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="sharpen-bench-round-") as tmp:
        for backend in ("hf", "vllm-server"):
            results[backend] = one_round(Path(tmp), backend, Path(args.env).resolve())
            print(json.dumps({backend: results[backend]}), flush=True)
    hf, vl = results["hf"], results["vllm-server"]
    print("| stage | hf s | vllm-server s | vllm-server / hf |")
    print("|---|---:|---:|---:|")
    for s in STAGES:
        print(f"| {s} | {hf['stages'][s]:.0f} | {vl['stages'][s]:.0f} | {vl['stages'][s] / hf['stages'][s]:.2f}x |")
    print(f"| whole `dvc repro` | {hf['total_s']:.0f} | {vl['total_s']:.0f} | {vl['total_s'] / hf['total_s']:.2f}x |")
    for key in ("base_greedy", "round_greedy", "round_pass@1", "kept"):
        print(f"{key}: hf {hf[key]}, vllm-server {vl[key]}")


if __name__ == "__main__":
    main()
