"""SmolLM2-135M-Instruct through the real pipeline: N rounds of `dvc repro` + `sharpen advance`
with examples/params-smollm2.yaml, in a fresh clone; prints held-out accuracy (strict answers),
what a form-blind reward would have scored (`lenient`), the share of such rewards paid for
restated or unevaluated answers (`hack share`), the gate, and per-stage times.

`--task multiplication` swaps the addition task for 2-digit x 1-digit products written to a
problem file ("What is 37 * 6? Reply with only the number."; 200 held out, 256 drawn a round),
the task on which a form-blind math_equiv taught the loop to restate its questions.

`--recipe grpo` (or iterative-dpo, ...) runs another recipe on the same params.

`--recipe absolute-zero` makes SmolLM2 its own proposer of function-form programs (AZ_PROPOSER).

Run: `python experiments/smollm2.py --rounds 2 [--task multiplication] [--recipe grpo --lr 5e-5]` (about 12 minutes a round on 2 CPU cores)
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
    parser.add_argument("--task", choices=["addition", "multiplication"], default="addition")
    parser.add_argument("--recipe", default="rest-em", help="e.g. grpo or iterative-dpo (their defaults, with GRPO's "
                        "completions as long as generate's)")
    parser.add_argument("--lr", type=float, default=None, help="train.lr (the example's 5e-4 is SFT's; RL and DPO "
                        "with LoRA want smaller steps)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sharpen-smollm2-") as tmp:
        ws = Path(tmp) / "ws"
        sh(PROJECT, "git", "clone", "-q", str(PROJECT), str(ws))
        params = (ws / "examples/params-smollm2.yaml").read_text()
        if args.task == "multiplication":
            params = _multiplication(ws, params)
        if args.recipe != "rest-em":
            import yaml

            raw = yaml.safe_load(params)
            raw["recipe"] = args.recipe
            if args.recipe in ("grpo", "ttrl-grpo", "sec"):
                raw["train"]["grpo"] = {"max_completion_length": raw["generate"]["max_new_tokens"]}
            if args.recipe == "absolute-zero":  # the real thing: function-form programs from an instruction
                raw["propose"] = AZ_PROPOSER
                raw["train"]["grpo"] = {"num_generations": raw["generate"]["k"],
                                        "max_completion_length": raw["generate"]["max_new_tokens"]}
            if args.lr is not None:
                raw["train"]["lr"] = args.lr
            params = yaml.safe_dump(raw, sort_keys=False)
        (ws / "params.yaml").write_text(params)
        sh(ws, "git", "add", "-A")
        sh(ws, "git", "commit", "-qm", f"SmolLM2 params ({args.task})")
        rows = []
        for n in range(1, args.rounds + 1):
            sh(ws, "dvc", "repro")
            times = {s: read(ws, s)["wall_s"] for s in STAGES if (ws / "data" / s / "metrics.json").exists()}
            if n == 1:
                base = read(ws, "base/evaluate")
                rows.append({"round": 0, **{k: base[k] for k in KEYS}, "base_s": times["base"],
                             "evaluate_s": times["base/evaluate"]})
            ev, kept = read(ws, "round/evaluate"), read(ws, "round/filter")["kept"]
            rows.append({"round": n, **{k: ev[k] for k in KEYS}, "kept": kept,
                         "generate_s": times["round/generate"], "verify_s": times["round/verify"],
                         "train_s": times["round/train"], "evaluate_s": times["round/evaluate"]})
            sh(ws, sys.executable, "-m", "sharpen.cli", "advance")
            state = json.loads((ws / "data/state/state.json").read_text())
            rows[-1]["gate"] = "accepted" if state["history"][-1]["accepted"] else "rejected"
            if args.recipe == "absolute-zero":
                rows[-1]["propose"] = {k: read(ws, "round/propose").get(k) for k in ("proposals", "valid_share", "reasons", "problems")}
                rows[-1]["train_proposer"] = {k: read(ws, "round/train_proposer").get(k) for k in
                                              ("reward_mean", "solver_rate_mean", "distinct_share", "steps", "wall_s")}
                rows[-1]["propose_s"] = read(ws, "round/propose")["wall_s"]
            print(json.dumps(rows[-1]), flush=True)
    print("| round | greedy | lenient | hack share | pass@1 | pass@4 | maj@4 | kept | gate | generate s | train s | evaluate s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['round']} | {r['greedy_accuracy']:.3f} | {r['greedy_lenient_accuracy']:.3f} | "
              f"{r['greedy_form_hack_share']:.3f} | {r['pass@1']:.3f} | {r['pass@4']:.3f} | {r['maj@4']:.3f} | "
              f"{r.get('kept', '')} | {r.get('gate', '')} | {r.get('generate_s', '')} | {r.get('train_s', '')} | "
              f"{r['evaluate_s']} |")


# Absolute Zero with SmolLM2 as its own proposer: function-form programs (definitions, then a call),
# at temperature 0.7 (at 1.0 none of 16 trial proposals parsed as a program)
AZ_PROPOSER = {
    "program": "function", "prompts": 8, "group": 8, "temperature": 0.7, "max_new_tokens": 80, "steps": 4,
    "batch_size": 16, "lr": 5.0e-5,
    "prompt": ("Write a short Python function f that takes an integer and returns an integer, then on the last "
               "line call it with an integer, like this:\ndef f(x):\n    return x * 3 - 1\nf(4)\n{examples}"),
}
KEYS = ("greedy_accuracy", "greedy_lenient_accuracy", "greedy_form_hack_share", "pass@1", "pass@4", "maj@4")


def _multiplication(ws: Path, params: str) -> str:
    """Write the products a (2 digits) x b (1 digit) as a problem file; point the task at it."""
    import random

    rows = [{"id": f"mul-{a}x{b}", "prompt": f"What is {a} * {b}? Reply with only the number.", "answer": str(a * b),
             "category": f"x{b}"} for a in range(10, 100) for b in range(2, 10)]
    random.Random(0).shuffle(rows)
    (ws / "data/problems").mkdir(parents=True, exist_ok=True)
    for name, part in (("mul.jsonl", rows[200:]), ("mul-eval.jsonl", rows[:200])):
        (ws / "data/problems" / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    task = params[params.index("task:") : params.index("base:")]
    new = ("task:\n  name: file\n  path: data/problems/mul.jsonl\n  eval_path: data/problems/mul-eval.jsonl\n"
           "  template: \"{prompt}\"\n  chat: auto\n  seed: 1234\n\n")
    return params.replace(task, new)


if __name__ == "__main__":
    main()
