"""Engine starts in a loop on `vllm-server`: the loop's engines (`generate.server.lifetime: loop`) against
engines each stage starts (`lifetime: stage`), with the transformers backend (`hf`) as the yardstick.

Three fresh workspaces of the embedded default at small sizes (a base whose head size vLLM's CPU
attention takes; `--lora` LoRA training, else full weights), identical but for `generate` and
`evaluate`'s backend and lifetime, each running `python -m flows.loop --rounds N` from the same
built base model (untimed). Prints, per side: the loop's wall time, engine starts in all and per
round (one engine log per start), and whether every round's samples and held-out metrics equal the
per-stage side's (they must: a request carries its own seed).

Run: `make vllm && python benchmarks/loop_engines.py [--rounds 2] [--lora]`  (about 15 minutes on 2 cores)
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from tests import workspace  # noqa: E402
from tests.workspace import make_workspace, run  # noqa: E402

SIDES = ("hf", "vllm-server:stage", "vllm-server:loop")


def params_for(side: str, vllm_env: Path, lora: bool) -> dict:
    backend, _, lifetime = side.partition(":")
    sampling = {"backend": backend}
    if backend == "vllm-server":
        sampling["server"] = {"vllm_env": str(vllm_env), "dtype": "float32", "lifetime": lifetime}
    out = {"base": {"hidden_size": 64, "intermediate_size": 256, "num_heads": 1, "num_layers": 2, "steps": 150},
           "task": {"pool_size": 256, "eval_size": 64},
           "generate": sampling, "evaluate": dict(sampling), "loop": {"plateau": None}}
    if lora:
        out["train"] = {"lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}}
    return out


def run_side(root: Path, side: str, rounds: int, vllm_env: Path, lora: bool) -> dict:
    ws = root / side.replace(":", "-")
    make_workspace(ws, params_for(side, vllm_env, lora))
    run(ws, "dvc", "repro", "base")  # untimed, and the same model on every side (same params, same seed)
    run(ws, "git", "add", "-A")
    run(ws, "git", "commit", "-qm", "base")
    logs = ws / ".sharpen" / "vllm-stage-logs"
    os.environ["SHARPEN_VLLM_LOGS"] = str(logs)  # per-stage engines log here, one file per start
    start = time.perf_counter()
    run(ws, sys.executable, "-m", "flows.loop", "--rounds", str(rounds))
    seconds = time.perf_counter() - start
    starts = len(list(logs.glob("*.log"))) if logs.exists() else 0
    loop_starts = ws / ".sharpen" / "engines" / "starts.jsonl"
    starts += len(loop_starts.read_text().splitlines()) if loop_starts.exists() else 0
    per_round = {}
    for n in range(1, rounds + 1):
        metrics = json.loads(run(ws, "git", "show", f"round-{n}:data/round/evaluate/metrics.json").stdout)
        samples = run(ws, "git", "show", f"round-{n}:dvc.lock").stdout
        per_round[n] = {"greedy": metrics["greedy_accuracy"], "pass@1": metrics["pass@1"],
                        "lock": _samples_md5(samples)}
    return {"seconds": seconds, "starts": starts, "rounds": per_round}


def _samples_md5(lock_text: str) -> str:
    import yaml

    lock = yaml.safe_load(lock_text)
    outs = lock["stages"]["generate"]["outs"]
    return next(o["md5"] for o in outs if o["path"].endswith("samples.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lora", action="store_true", help="LoRA training (adapters loaded at run time)")
    parser.add_argument("--env", default=str(PROJECT / ".venv-vllm"), help="the vLLM environment")
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    parser.add_argument("--keep", type=Path, help="keep the workspaces in this folder")
    args = parser.parse_args()
    workspace.TINY.clear()
    results = {}
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="sharpen-bench-engines-"))
    for side in args.sides:
        results[side] = run_side(tmp, side, args.rounds, Path(args.env).resolve(), args.lora)
        print(json.dumps({side: results[side]}), flush=True)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    ref = results.get("vllm-server:stage")
    if "hf" not in results:
        results = {"hf": {"seconds": float("nan"), "starts": 0, "rounds": {}}} | results
    print(f"| side ({'LoRA' if args.lora else 'full weights'}, {args.rounds} rounds) | loop s | engine starts | "
          "vs hf | samples and metrics equal to per-stage engines |")
    print("|---|---:|---:|---:|---|")
    for side, r in results.items():
        ratio = r["seconds"] / results["hf"]["seconds"] if "hf" in results else float("nan")
        same = "" if side == "hf" or ref is None else ("yes" if r["rounds"] == ref["rounds"] else "NO")
        print(f"| {side} | {r['seconds']:.0f} | {r['starts']} | {ratio:.2f}x | {same} |")


if __name__ == "__main__":
    main()
