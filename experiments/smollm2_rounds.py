"""SmolLM2-135M-Instruct through the real pipeline: N rounds of `dvc repro` + `sharpen advance`
with examples/params-smollm2.yaml, in a fresh clone; prints held-out accuracy (strict answers),
what a form-blind reward would have scored (`lenient`), the share of such rewards paid for
restated or unevaluated answers (`hack share`), the gate, and per-stage times.

`--task multiplication` swaps the addition task for 2-digit x 1-digit products written to a
problem file ("What is 37 * 6? Reply with only the number."; 200 held out, 256 drawn a round),
the task on which a form-blind math_equiv taught the loop to restate its questions.

`--recipe grpo` (or iterative-dpo, ...) runs another recipe on the same params.

`--recipe absolute-zero` makes SmolLM2 its own proposer of function-form programs (AZ_PROPOSER):
deduction, abduction and induction, seed examples in the prompt, and a repetition penalty.
`--recipe r-zero` makes it its own challenger of additions (R_ZERO_PROPOSER), posed to the solver
in the task's template and labelled by the solver's majority.

Run: `python experiments/smollm2_rounds.py --rounds 2 [--task multiplication] [--recipe grpo --lr 5e-5]` (about 12 minutes a round on 2 CPU cores)
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
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


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
            if args.recipe in ("absolute-zero", "r-zero"):  # the model is its own proposer
                raw["propose"] = AZ_PROPOSER if args.recipe == "absolute-zero" else R_ZERO_PROPOSER
                if args.recipe == "absolute-zero":  # induction's answer is a function, not a number
                    raw["generate"]["max_new_tokens"] = 64
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
            if args.recipe in ("absolute-zero", "r-zero"):
                rows[-1]["propose"] = {k: read(ws, "round/propose").get(k) for k in
                                       ("proposals", "valid_share", "reasons", "problems", "categories",
                                        "distinct_share", "repetition_mean")}
                rows[-1]["train_proposer"] = {k: read(ws, "round/train_proposer").get(k) for k in
                                              ("reward_mean", "solver_rate_mean", "true_solve_rate", "distinct_share",
                                               "steps", "wall_s")}
                rows[-1]["solved_by_task"] = _solved_by_task(ws)
                rows[-1]["filter"] = read(ws, "round/filter")
                rows[-1]["propose_s"] = read(ws, "round/propose")["wall_s"]
            print(json.dumps(rows[-1]), flush=True)
    print("| round | greedy | lenient | hack share | pass@1 | pass@4 | maj@4 | kept | gate | generate s | train s | evaluate s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['round']} | {r['greedy_accuracy']:.3f} | {r['greedy_lenient_accuracy']:.3f} | "
              f"{r['greedy_form_hack_share']:.3f} | {r['pass@1']:.3f} | {r['pass@4']:.3f} | {r['maj@4']:.3f} | "
              f"{r.get('kept', '')} | {r.get('gate', '')} | {r.get('generate_s', '')} | {r.get('train_s', '')} | "
              f"{r['evaluate_s']} |")


# Absolute Zero with SmolLM2 as its own proposer: function-form programs (definitions, then three
# calls), at temperature 0.7 (at 1.0 none of 16 trial proposals parsed as a program). Against the
# collapse seen with one example in the prompt (every valid proposal was that example): two examples
# drawn per prompt from six seeds and the buffer, and a repetition penalty of weight 0.5.
_SEEDS = [
    "def f(x):\n    return x * 3 - 1\nf(4)\nf(0)\nf(7)",
    "def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\nf(3)\nf(5)\nf(10)",
    "def f(a):\n    if a % 2 == 0:\n        return a // 2\n    return 3 * a + 1\nf(6)\nf(7)\nf(10)",
    "def f(x):\n    return x * x + 2 * x\nf(1)\nf(3)\nf(-2)",
    "def f(n):\n    return len(str(n)) + n % 10\nf(123)\nf(58)\nf(7)",
    "def f(x):\n    return max(x, 10) - min(x, 3)\nf(2)\nf(12)\nf(5)",
]
AZ_PROPOSER = {
    "program": "function", "tasks": ["deduction", "abduction", "induction"], "prompts": 9, "group": 8,
    "temperature": 0.7, "max_new_tokens": 100, "steps": 4, "batch_size": 16, "lr": 5.0e-5, "examples": 2,
    "seed_examples": _SEEDS, "repetition_weight": 0.5,
    "prompt": ("Here are Python functions, each followed by calls to it:\n\n{examples}\n\nWrite a new Python "
               "function f, different from these, that takes an integer and returns an integer. On the lines after "
               "it, call f on three different integers, one call per line."),
}
# R-Zero with SmolLM2 as its own challenger: `a+b` additions (the task's questions), posed to the
# solver in the task's template; two earlier questions shown per prompt once the buffer has some.
R_ZERO_PROPOSER = {
    "prompts": 8, "group": 8, "temperature": 1.0, "max_new_tokens": 12, "steps": 4, "batch_size": 16, "lr": 5.0e-5,
    "examples": 2, "seed_examples": ["58+67", "13+90"],
    "prompt": ("Write an addition of two 2-digit numbers in the form a+b. Examples:\n{examples}\nReply with only "
               "the new addition."),
}
KEYS = ("greedy_accuracy", "greedy_lenient_accuracy", "greedy_form_hack_share", "pass@1", "pass@4", "maj@4")


def _solved_by_task(ws: Path) -> dict:
    """Self-play: the solver's success rate on the round's proposals, per category (task type)."""
    import polars as pl

    problems = pl.read_parquet(ws / "data/round/propose/problems.parquet").select("problem_id", "category")
    verdicts = pl.read_parquet(ws / "data/round/verify/verdicts.parquet").join(problems, on="problem_id")
    rates = verdicts.group_by("category").agg(pl.col("correct").mean().round(3), pl.len().alias("answers"))
    return {row["category"]: [row["correct"], row["answers"]] for row in rates.iter_rows(named=True)}


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
