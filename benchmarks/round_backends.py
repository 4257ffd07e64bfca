"""A whole SmolLM2 round, transformers against vLLM engines: the same params with
`generate.backend` and `evaluate.backend` set to `hf`, then to `vllm-server`, one command.

For each backend: a fresh clone of this repository with examples/params-smollm2.yaml, `dvc repro
base` (the preset's conversion, not timed), then timed: `dvc repro evaluate_base` (the base's
held-out evaluation) and `dvc repro` (the round: generate, verify, filter, train, evaluate). Prints
each stage's wall_s (from its metrics.json; a vllm-server stage's includes starting its engine),
the round's wall time and its ratio to hf's, and the round's greedy accuracy (the two backends
sample differently, so accuracies differ within noise).
Needs the vLLM environment (`make vllm`); vllm-server runs at `server.dtype: float32` (bf16 is
slower on a CPU without native bf16, BENCHMARKS.md).

Run: `python benchmarks/round_backends.py [--backends hf vllm-server] [--problems 256] [--eval-size 200]`
(about 30 minutes on 2 cores at the example's sizes)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
STAGES = {"evaluate_base": "base/evaluate", "generate": "round/generate", "verify": "round/verify",
          "filter": "round/filter", "train": "round/train", "evaluate": "round/evaluate"}


def sh(cwd: Path, *cmd: str) -> float:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def run(backend: str, vllm_env: str, tmp: Path, problems: int, eval_size: int) -> dict:
    ws = tmp / backend
    sh(PROJECT, "git", "clone", "-q", str(PROJECT), str(ws))
    raw = yaml.safe_load((ws / "examples/params-smollm2.yaml").read_text())
    raw["generate"]["problems_per_round"], raw["task"]["eval_size"] = problems, eval_size
    for section in ("generate", "evaluate"):
        raw[section]["backend"] = backend
        if backend == "vllm-server":
            raw[section]["server"] = {"vllm_env": vllm_env, "dtype": "float32"}
    (ws / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    sh(ws, "git", "commit", "-qam", f"SmolLM2 params, backend {backend}")
    sh(ws, "dvc", "repro", "base")
    base_s = sh(ws, "dvc", "repro", "evaluate_base")
    round_s = sh(ws, "dvc", "repro")
    stages = {name: json.loads((ws / "data" / rel / "metrics.json").read_text()) for name, rel in STAGES.items()}
    return {"backend": backend, "evaluate_base_cmd_s": round(base_s, 1), "round_cmd_s": round(round_s, 1),
            **{f"{name}_s": m["wall_s"] for name, m in stages.items()},
            "greedy_accuracy": stages["evaluate"]["greedy_accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", nargs="+", default=["hf", "vllm-server"])
    parser.add_argument("--env", default=str(PROJECT / ".venv-vllm"), help="the vLLM environment")
    parser.add_argument("--problems", type=int, default=256, help="generate.problems_per_round (the example's 256)")
    parser.add_argument("--eval-size", type=int, default=200, help="task.eval_size (the example's 200)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="sharpen-round-backends-") as tmp:
        for backend in args.backends:
            rows.append(run(backend, args.env, Path(tmp), args.problems, args.eval_size))
            print(json.dumps(rows[-1]), flush=True)
    first = rows[0]
    print(f"\n| backend | evaluate_base s | generate s | verify s | filter s | train s | evaluate s | round (dvc repro) s "
          f"| speed vs {first['backend']} | greedy |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['backend']} | {r['evaluate_base_s']:.0f} | {r['generate_s']:.0f} | {r['verify_s']:.0f} | "
              f"{r['filter_s']:.0f} | {r['train_s']:.0f} | {r['evaluate_s']:.0f} | {r['round_cmd_s']:.0f} | "
              f"{first['round_cmd_s'] / r['round_cmd_s']:.2f}x | {r['greedy_accuracy']:.3f} |")


if __name__ == "__main__":
    main()
