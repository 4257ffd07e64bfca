"""Run recipes for N rounds each on the embedded task, same seed and settings, and print RESULTS.md's table.

Each run is a fresh clone of this repository's HEAD in a temporary directory: `recipe:` (and the
run's overrides) written to params.yaml and committed, then `dvc repro` + `sharpen advance` N
times. Held-out greedy accuracy per round, per-category greedy accuracy at the last round,
samples generated (generate + controller dev samples + synthesize attempts) and wall time come
from the committed round metrics.

Run: `python experiments/every_recipe.py --rounds 3 [--only rest-em ttrl] [--keep DIR]`
"""

from __future__ import annotations

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

# (name, recipe, overrides). The last two are controls: b-star's training choices without its
# controller, and star's base, task and decoding budget with ReST-EM's selection.
RUNS = [
    ("rest-em", "rest-em", {}),
    ("ttrl", "ttrl", {}),
    ("b-star", "b-star", {}),
    ("sws", "sws", {}),
    ("star", "star", {}),
    # b-star's control: its training choices (from the previous policy, repeats kept) without the controller
    ("rest-em (previous, no dedup)", "rest-em", {"train": {"init": "previous"}, "filter": {"dedup": False}}),
    ("rest-em (scratchpad)", "rest-em", {
        "task": {"scratchpad": True}, "base": {"hint_fraction": 0.5, "steps": 180},
        "generate": {"max_new_tokens": 40}, "evaluate": {"max_new_tokens": 40},
    }),
    # the reward-learning recipes all continue from the previous policy: their control does too
    ("rest-em (previous)", "rest-em", {"train": {"init": "previous"}}),
    # learning from rewards (objectives dpo and grpo)
    ("iterative-dpo", "iterative-dpo", {}),
    ("spin", "spin", {}),
    ("self-reward (verifier as judge)", "self-reward", {"verify": {"labels": "gold"}, "filter": {"pairs": {"scores": "verifier"}}}),
    # the same with iterative-dpo's NLL term on the chosen answer (without it DPO pushed the chosen down too)
    ("self-reward (verifier as judge, NLL term)", "self-reward", {"verify": {"labels": "gold"},
                                                                  "filter": {"pairs": {"scores": "verifier"}},
                                                                  "train": {"dpo": {"nll_weight": 1.0}}}),
    ("grpo", "grpo", {}),
    ("rest-grpo", "rest-grpo", {}),
    ("ttrl-grpo", "ttrl-grpo", {}),
    ("sec", "sec", {}),
    # self-play (a proposer role writes the problems); the control has their base and continues from
    # the previous policy, on the task's pool with gold labels
    ("r-zero", "r-zero", {}),
    ("absolute-zero", "absolute-zero", {}),
    ("rest-em (self-play base, previous)", "rest-em", {"base": {"propose_fraction": 0.1}, "train": {"init": "previous"}}),
    # the same on self-play's sample budget: 128 pool problems a round x 8 (self-play: ~120 proposals x 8)
    ("rest-em (self-play base, previous, 128 problems)", "rest-em", {
        "base": {"propose_fraction": 0.1}, "train": {"init": "previous"}, "generate": {"problems_per_round": 128}}),
]


def sh(cwd: Path, *cmd: str) -> str:
    env = os.environ | {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
                        "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def deep_update(base: dict, extra: dict) -> None:
    for k, v in extra.items():
        if isinstance(v, dict):
            deep_update(base.setdefault(k, {}), v)
        else:
            base[k] = v


def show(ws: Path, rev: str, path: str):
    out = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ws, capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else None


def run_recipe(root: Path, name: str, recipe: str, overrides: dict, rounds: int) -> dict:
    ws = root / name.replace(" ", "_").replace("(", "").replace(")", "")
    sh(root, "git", "clone", "-q", str(PROJECT), str(ws))
    params_path = ws / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["recipe"] = recipe
    deep_update(params, overrides)
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    sh(ws, "git", "-c", "user.name=sharpen", "-c", "user.email=sharpen@localhost", "commit", "-qam", f"recipe {name}")
    start = time.perf_counter()
    for _ in range(rounds):
        sh(ws, "dvc", "repro")
        sh(ws, sys.executable, "-m", "sharpen.cli", "advance")
    wall = time.perf_counter() - start
    base = json.loads(show(ws, "round-1", "data/base/evaluate/metrics.json"))
    row = {"name": name, "recipe": recipe, "base": base["greedy_accuracy"], "greedy": [], "pass@8": [], "maj@8": [],
           "samples": 0, "wall_s": wall}
    for n in range(1, rounds + 1):
        tag = f"round-{n}"
        ev = json.loads(show(ws, tag, "data/round/evaluate/metrics.json"))
        row["greedy"].append(ev["greedy_accuracy"])
        row["pass@8"].append(ev.get("pass@8"))
        row["maj@8"].append(ev.get("maj@8"))
        for stage in ("generate", "controller", "synthesize"):
            m = json.loads(show(ws, tag, f"data/round/{stage}/metrics.json") or "{}")
            row["samples"] += int(m.get("samples", 0))
        proposer = json.loads(show(ws, tag, "data/round/train_proposer/metrics.json") or "{}")
        if proposer.get("kind", "none") != "none":
            verify = json.loads(show(ws, tag, "data/round/verify/metrics.json") or "{}")
            filt = json.loads(show(ws, tag, "data/round/filter/metrics.json") or "{}")
            propose = json.loads(show(ws, tag, "data/round/propose/metrics.json") or "{}")
            row.setdefault("selfplay", []).append({
                "valid": proposer.get("valid_share"), "rate": proposer.get("solver_rate_mean"),
                "true_rate": proposer.get("true_solve_rate"), "label_accuracy": verify.get("label_accuracy"),
                "problems": propose.get("problems"), "distinct": propose.get("distinct_share"),
                "kept_problems": filt.get("problems_with_kept"), "reward": proposer.get("reward_mean"),
                "categories": propose.get("categories")})
        if n == 1:
            row["round1"] = {s: json.loads(show(ws, tag, f"data/round/{s}/metrics.json") or "{}")
                             for s in ("controller", "verify", "filter", "synthesize", "train")}
    row["last"] = {s: json.loads(show(ws, f"round-{rounds}", f"data/round/{s}/metrics.json") or "{}")
                   for s in ("controller", "verify", "filter", "synthesize", "train")}
    cats = show(ws, f"round-{rounds}", "data/round/evaluate/categories.csv")
    row["categories"] = {}
    for line in cats.splitlines()[1:]:
        cells = dict(zip(cats.splitlines()[0].split(","), line.split(",")))
        row["categories"][cells["category"]] = float(cells["greedy_accuracy"])
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict], rounds: int) -> str:
    cats = sorted({c for r in rows for c in r["categories"]})
    head = ["recipe", "base", *[f"round {n}" for n in range(1, rounds + 1)], *[f"r{rounds} {c}" for c in cats],
            "samples", "wall (min)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"], f"{100 * r['base']:.1f}", *[f"{100 * g:.1f}" for g in r["greedy"]],
                 *[f"{100 * r['categories'].get(c, float('nan')):.0f}" for c in cats],
                 f"{r['samples']:,}", f"{r['wall_s'] / 60:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_self_play(rows: list[dict]) -> str:
    """Per self-play round: the proposer's validity, diversity and mean reward, the solver's mean rate on
    the proposals (r-zero: p̂; absolute-zero: success) and its true success rate, pseudo-label accuracy."""
    pct = lambda v: "—" if v is None else f"{100 * v:.1f}"  # noqa: E731
    head = ["recipe", "round", "solver greedy", "valid", "distinct", "problems", "kept problems", "solver rate",
            "true solve rate", "pseudo-label acc", "proposer reward"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        for n, sp in enumerate(r.get("selfplay", []), 1):
            cells = [r["name"], str(n), pct(r["greedy"][n - 1]), pct(sp["valid"]), pct(sp["distinct"]),
                     str(sp["problems"]), str(sp["kept_problems"]), pct(sp["rate"]), pct(sp["true_rate"]),
                     pct(sp["label_accuracy"]), "—" if sp["reward"] is None else f"{sp['reward']:.3f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_per_round(rows: list[dict], rounds: int) -> str:
    """greedy / pass@8 / maj@8 per round, 3+3-digit greedy at the last round, samples and wall time."""
    pct = lambda v: "—" if v is None else f"{100 * v:.1f}"  # noqa: E731
    head = ["recipe", "base", *[f"r{n} greedy / pass@8 / maj@8" for n in range(1, rounds + 1)], f"r{rounds} 3+3",
            "samples", "wall (min)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"], pct(r["base"]),
                 *[f"{pct(g)} / {pct(p)} / {pct(m)}" for g, p, m in zip(r["greedy"], r["pass@8"], r["maj@8"], strict=True)],
                 f"{100 * r['categories'].get('3+3', float('nan')):.0f}", f"{r['samples']:,}", f"{r['wall_s'] / 60:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="run names to run (default: all)")
    parser.add_argument("--keep", type=Path, help="keep the workspaces here instead of a temp dir")
    parser.add_argument("--json", type=Path, help="append each run's row to this JSON-lines file")
    args = parser.parse_args()
    by_name = {r[0]: r for r in RUNS}
    unknown = [name for name in args.only or [] if name not in by_name]
    if unknown:
        raise SystemExit(f"--only: unknown run(s) {unknown}; known: {list(by_name)}")
    runs = [by_name[name] for name in args.only] if args.only else RUNS  # in the order asked
    root = args.keep or Path(tempfile.mkdtemp(prefix="sharpen-recipes-"))
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, recipe, overrides in runs:
        row = run_recipe(root, name, recipe, overrides, args.rounds)
        rows.append(row)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")
    print(table(rows, args.rounds))
    print()
    print(table_per_round(rows, args.rounds))
    if any("selfplay" in r for r in rows):
        print()
        print(table_self_play(rows))


if __name__ == "__main__":
    main()
