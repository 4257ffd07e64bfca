"""Evaluate a policy on the held-out set: greedy accuracy, pass@k and maj@k, per category.

`--baseline` evaluates the base model as round 0, so every round has a baseline. Sampling uses
the same seed every round, so rounds differ only by their policy.

Run: `python -m stages.evaluate --model data/round/train/model --problems data/tasks/eval.parquet \
        --out data/round/evaluate`
"""

import argparse
from pathlib import Path

import polars as pl

from sharpen.backends import load_backend
from sharpen.io import hash_json, read_frame, write_csv, write_frame, write_json
from sharpen.metrics import by_category, per_problem, summarize
from sharpen.params import load_params
from sharpen.schemas import EvalSample, Problem
from sharpen.stage import Timer, progress, run_stage
from sharpen.verifiers import get_verifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--problems", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--baseline", action="store_true", help="evaluate as round 0 (the base model)")
    args = parser.parse_args()
    params = load_params()
    e = params.evaluate
    round_ = 0 if args.baseline else params.round
    timer = Timer()
    problems = read_frame(args.problems, Problem)
    prompts = problems["prompt"].to_list()
    backend = load_backend(e.backend, args.model, batch_size=e.batch_size)
    bar = progress(len(prompts) * (1 + e.k), f"evaluate: round {round_}", "sample")
    seed = int(hash_json([params.seed, "evaluate"])[:8], 16)
    greedy = backend.generate(prompts, n=1, temperature=0.0, top_p=1.0, max_new_tokens=e.max_new_tokens,
                              seed=seed, on_progress=bar.update)
    sampled = backend.generate(prompts, n=e.k, temperature=e.temperature, top_p=e.top_p,
                               max_new_tokens=e.max_new_tokens, seed=seed, on_progress=bar.update)
    bar.close()

    rows = {"problem_id": [], "category": [], "sample_idx": [], "completion": [], "answer": []}
    for pid, cat, ans, g, s in zip(problems["problem_id"], problems["category"], problems["answer"], greedy, sampled, strict=True):
        for idx, c in [(-1, g[0]), *enumerate(s)]:
            rows["problem_id"].append(pid)
            rows["category"].append(cat)
            rows["sample_idx"].append(idx)
            rows["completion"].append(c.text)
            rows["answer"].append(ans)
    results = get_verifier(params.verify.verifier)(rows["completion"], rows.pop("answer"))
    samples = pl.DataFrame(rows, schema_overrides={"sample_idx": pl.Int64}).select(
        pl.lit(round_, pl.Int64).alias("round"), pl.all(),
        extracted=pl.Series([r.extracted for r in results], dtype=pl.String),
        correct=pl.Series([r.correct for r in results], dtype=pl.Boolean),
    )
    write_frame(samples, args.out / "samples.parquet", EvalSample)

    table = per_problem(samples, e.pass_k)
    summary = summarize(table, e.pass_k, e.k)
    categories = by_category(table, e.pass_k, e.k).with_columns(pl.lit(round_).alias("round"))
    write_csv(categories, args.out / "categories.csv")
    metrics = {"round": round_, **summary,
               "by_category": {r["category"]: {k: v for k, v in r.items() if k not in ("category", "round")}
                               for r in categories.iter_rows(named=True)},
               "wall_s": timer.seconds}
    write_json(metrics, args.out / "metrics.json")
    print(f"evaluate: round {round_} on {summary['problems']} held-out problems")
    print("  " + "  ".join(f"{k} {v:.3f}" for k, v in summary.items() if k != "problems"))
    print("  greedy by category: " + "  ".join(f"{r['category']} {r['greedy_accuracy']:.2f}" for r in categories.iter_rows(named=True)))


if __name__ == "__main__":
    run_stage(main)
