"""The price of DVC, files, validation and lineage: one round via `dvc repro` vs the same work in-process.

Both run in one command on the same machine: a temporary workspace (a copy of this project)
builds the base model untimed, then
- `dvc repro`: generate → verify → filter → train → evaluate, one process per stage, Parquet
  between stages, pandera validation on every read and write, DVC hashing and lock files;
- in-process: the same functions with the same params, called one after another in this process,
  data passed in memory, no validation, no files but the trained model.

Run: `python benchmarks/round.py [--pool-size 1024]`
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl  # noqa: E402

from tests.workspace import make_workspace, run  # noqa: E402


def in_process(ws: Path) -> float:
    from sharpen.backends.hf import HFBackend
    from sharpen.filters import decide, kept_examples
    from sharpen.metrics import per_problem, summarize
    from sharpen.params import load_params
    from sharpen.sft import train_sft
    from sharpen.verifiers import get_verifier

    start = time.perf_counter()
    p = load_params(ws / "params.yaml")
    g, e = p.generate, p.evaluate
    pool = pl.read_parquet(ws / "data/tasks/pool.parquet")
    held_out = pl.read_parquet(ws / "data/tasks/eval.parquet")
    verifier = get_verifier(p.verify.verifier)
    base = ws / "data/base/model"

    outs = HFBackend(base, batch_size=g.batch_size).generate(
        pool["prompt"].to_list(), n=g.k, temperature=g.temperature, top_p=g.top_p,
        max_new_tokens=g.max_new_tokens, seed=1)
    samples = pl.DataFrame({
        "round": 1, "problem_id": [pid for pid in pool["problem_id"] for _ in range(g.k)],
        "sample_idx": [i for _ in range(pool.height) for i in range(g.k)],
        "prompt": [pr for pr in pool["prompt"] for _ in range(g.k)],
        "completion": [c.text for o in outs for c in o]})
    answers = [a for a in pool["answer"] for _ in range(g.k)]
    results = verifier(samples["completion"].to_list(), answers)
    verdicts = samples.select("problem_id", "sample_idx").with_columns(
        reward=pl.Series([r.reward for r in results]), correct=pl.Series([r.correct for r in results]))
    kept = kept_examples(samples, verdicts, decide(samples, verdicts, rule=p.filter.rule, cap=p.filter.cap,
                                                   dedup=p.filter.dedup))
    with tempfile.TemporaryDirectory() as tmp:
        t = p.train
        train_sft(kept, base, Path(tmp), lr=t.lr, lr_scheduler=t.lr_scheduler, warmup_ratio=t.warmup_ratio, epochs=t.epochs,
                  batch_size=t.batch_size, max_length=t.max_length, seed=t.seed)
        policy = HFBackend(tmp, batch_size=e.batch_size)
        prompts = held_out["prompt"].to_list()
        greedy = policy.generate(prompts, n=1, temperature=0.0, top_p=1.0, max_new_tokens=e.max_new_tokens, seed=2)
        sampled = policy.generate(prompts, n=e.k, temperature=e.temperature, top_p=e.top_p,
                                  max_new_tokens=e.max_new_tokens, seed=2)
    rows = []
    for pid, cat, ans, gr, sa in zip(held_out["problem_id"], held_out["category"], held_out["answer"], greedy, sampled):
        for idx, c in [(-1, gr[0]), *enumerate(sa)]:
            rows.append((pid, cat, idx, c.text, ans))
    res = verifier([r[3] for r in rows], [r[4] for r in rows])
    ev = pl.DataFrame({"problem_id": [r[0] for r in rows], "category": [r[1] for r in rows],
                       "sample_idx": [r[2] for r in rows], "extracted": [x.extracted for x in res],
                       "correct": [x.correct for x in res]})
    summary = summarize(per_problem(ev, e.pass_k), e.pass_k, e.k)
    seconds = time.perf_counter() - start
    print(f"in-process round: {seconds:.1f}s, {kept.height} kept, greedy {summary['greedy_accuracy']:.3f}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pool-size", type=int, default=None, help="override task.pool_size (default: params.yaml)")
    args = parser.parse_args()
    overrides = {"task": {"pool_size": args.pool_size}} if args.pool_size else {}
    with tempfile.TemporaryDirectory(prefix="sharpen-bench-") as tmp:
        from tests import workspace

        workspace.TINY.clear()  # benchmark the shipped params, not the test sizes
        ws = make_workspace(Path(tmp), overrides)
        run(ws, "dvc", "repro", "evaluate_base")  # untimed: tasks, base model, baseline
        start = time.perf_counter()
        run(ws, "dvc", "repro")
        dvc_seconds = time.perf_counter() - start
        print(f"dvc repro round: {dvc_seconds:.1f}s")
        plain_seconds = in_process(ws)
    print(f"ratio dvc/in-process: {dvc_seconds / plain_seconds:.2f}x "
          f"(overhead {dvc_seconds - plain_seconds:.1f}s per round)")


if __name__ == "__main__":
    main()
