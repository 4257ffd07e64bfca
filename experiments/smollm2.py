"""SmolLM2-135M-Instruct through the real pipeline: N rounds of `dvc repro` + `sharpen advance`
with examples/params-smollm2.yaml, in a fresh clone; prints held-out accuracy and per-stage times.

Run: `python experiments/smollm2.py --rounds 2` (about 12 minutes a round on 2 CPU cores)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
STAGES = ["base", "base/evaluate", "round/generate", "round/verify", "round/filter", "round/train", "round/evaluate"]


def sh(cwd: Path, *cmd: str) -> None:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def read(ws: Path, rel: str) -> dict:
    return json.loads((ws / "data" / rel / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sharpen-smollm2-") as tmp:
        ws = Path(tmp) / "ws"
        sh(PROJECT, "git", "clone", "-q", str(PROJECT), str(ws))
        (ws / "params.yaml").write_text((ws / "examples/params-smollm2.yaml").read_text())
        sh(ws, "git", "commit", "-qam", "SmolLM2 params")
        rows = []
        for n in range(1, args.rounds + 1):
            sh(ws, "dvc", "repro")
            times = {s: read(ws, s)["wall_s"] for s in STAGES if (ws / "data" / s / "metrics.json").exists()}
            if n == 1:
                base = read(ws, "base/evaluate")
                rows.append({"round": 0, **{k: base[k] for k in ("greedy_accuracy", "pass@1", "pass@4", "maj@4")},
                             "base_s": times["base"], "evaluate_s": times["base/evaluate"]})
            ev, kept = read(ws, "round/evaluate"), read(ws, "round/filter")["kept"]
            rows.append({"round": n, **{k: ev[k] for k in ("greedy_accuracy", "pass@1", "pass@4", "maj@4")}, "kept": kept,
                         "generate_s": times["round/generate"], "verify_s": times["round/verify"],
                         "train_s": times["round/train"], "evaluate_s": times["round/evaluate"]})
            sh(ws, sys.executable, "-m", "sharpen.cli", "advance")
            print(json.dumps(rows[-1]), flush=True)
    print("| round | greedy | pass@1 | pass@4 | maj@4 | kept | generate s | verify s | train s | evaluate s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['round']} | {r['greedy_accuracy']:.3f} | {r['pass@1']:.3f} | {r['pass@4']:.3f} | {r['maj@4']:.3f} | "
              f"{r.get('kept', '')} | {r.get('generate_s', '')} | {r.get('verify_s', '')} | {r.get('train_s', '')} | "
              f"{r['evaluate_s']} |")


if __name__ == "__main__":
    main()
