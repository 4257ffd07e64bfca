"""Wall time, CPU time and peak memory of the filter stage on 1M and 10M samples, beside the lean yardstick.

Synthetic round inputs in the project's schemas: arithmetic problems `a+b`, 8 samples each (a
problem's pass rate drawn uniformly; a wrong sample gives one of three wrong answers, so
completions repeat), written as generate and verify write them: samples and verdicts sorted by
(problem_id, sample_idx), problems by problem_id. Each side runs in its own process, the sides
alternating, `--pairs` times per size:
- yardstick: the issue's lean query, the plain polars plan the stage ran before (string joins,
  three sorts) reading only the columns it needs, with no validation;
- stage: `python -m stages.filter` as `dvc repro` runs it, with the shipped params (rest-em:
  select correct, cap 10, dedup);
- with `--rev REV`: the stage as it was at commit REV (`git archive`), e.g. before a change.
Every side must write the same stats, decisions and kept rows (stats' float columns to 1e-15: the
plain plan sums them in its join's row order, which moves the last bit from run to run). Prints
each side's median wall, CPU (user + system) and peak RSS over the pairs, and the median [min,
max] of its per-pair ratios to the yardstick (and to REV's stage).

Run: `python benchmarks/filter.py [--sizes 1000000 10000000] [--pairs 3] [--rev 8d9fc06]`
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

PROJECT = Path(__file__).resolve().parent.parent
KEYS = ["problem_id", "sample_idx"]


def unit(expr: pl.Expr, seed: int) -> pl.Expr:
    """A uniform draw in [0, 1) per row, from a hash of `expr`."""
    return (expr.hash(seed) // (1 << 11)).cast(pl.Float64) / float(1 << 53)


def make_inputs(out: Path, samples: int, k: int = 8, seed: int = 0) -> None:
    """samples.parquet, verdicts.parquet and problems.parquet of one round: `samples` // `k` problems."""
    sys.path.insert(0, str(PROJECT))
    from sharpen.schemas import Problem, Sample, Verdict, columns

    out.mkdir(parents=True, exist_ok=True)
    i = pl.int_range(samples // k, dtype=pl.Int64)
    problems = pl.select(a=i // 1000, b=i % 1000, pass_rate=unit(i, seed)).with_columns(
        problem_id=pl.format("{}+{}", "a", "b"), prompt=pl.format("{}+{}=", "a", "b"),
        answer=(pl.col("a") + pl.col("b")).cast(pl.String),
        category=pl.format("{}+{}", pl.col("a").cast(pl.String).str.len_chars(), pl.col("b").cast(pl.String).str.len_chars()),
    ).sort("problem_id")
    rows = (
        problems.lazy().select("problem_id", "prompt", "answer", "pass_rate")
        .join(pl.LazyFrame({"sample_idx": list(range(k))}, schema={"sample_idx": pl.Int64}), how="cross")
        .with_columns(correct=unit(pl.struct(KEYS), seed + 1) < pl.col("pass_rate"), wrong=unit(pl.struct(KEYS), seed + 2))
        .with_columns(completion=pl.when("correct").then("answer")
                      .otherwise((pl.col("answer").cast(pl.Int64) + 1 + (pl.col("wrong") * 3).cast(pl.Int64)).cast(pl.String)))
        .sort(KEYS)
        .collect()
    )
    rows.select(
        round=pl.lit(1, pl.Int64), problem_id="problem_id", sample_idx="sample_idx", prompt="prompt", completion="completion",
        num_tokens=pl.col("completion").str.len_chars().cast(pl.Int64) + 1, finish_reason=pl.lit("stop"),
        policy_hash=pl.lit("0123456789abcdef0123456789abcdef"), temperature=pl.lit(1.0),
        token_ids=pl.lit(None, pl.List(pl.Int64)), logprobs=pl.lit(None, pl.List(pl.Float64)),
    ).cast(columns(Sample)).write_parquet(out / "samples.parquet")
    rows.select(
        round=pl.lit(1, pl.Int64), problem_id="problem_id", sample_idx="sample_idx", extracted="completion",
        reward=pl.col("correct").cast(pl.Float64), correct="correct",
        reason=pl.when("correct").then(pl.lit("ok")).otherwise(pl.lit("wrong")), verifier=pl.lit("exact_integer"),
        label="answer", majority_ratio=pl.lit(None, pl.Float64), judge_text=pl.lit(None, pl.String),
    ).cast(columns(Verdict)).write_parquet(out / "verdicts.parquet")
    problems.select("problem_id", "prompt", "answer", "category", tests=pl.lit(None, pl.String), source=pl.lit(None, pl.String),
                    verifier=pl.lit(None, pl.String)).cast(columns(Problem)).write_parquet(out / "problems.parquet")


def yardstick(inputs: Path, out: Path, cap: int) -> None:
    """The lean query: the stage's old plan (select correct, dedup, `cap`), only the columns it needs."""
    start = time.perf_counter()
    samples, verdicts = pl.scan_parquet(inputs / "samples.parquet"), pl.scan_parquet(inputs / "verdicts.parquet")
    graded = samples.select("round", *KEYS, "completion").join(verdicts.select(*KEYS, "reward", "correct"), on=KEYS)
    stats = (
        graded.join(pl.scan_parquet(inputs / "problems.parquet").select("problem_id", "category"), on="problem_id", how="left")
        .group_by("round", "problem_id", "category")
        .agg(n=pl.len().cast(pl.Int64), n_correct=pl.col("correct").sum().cast(pl.Int64),
             pass_rate=pl.col("correct").cast(pl.Float64).mean(), reward_mean=pl.col("reward").mean(),
             reward_std=pl.col("reward").std(ddof=0).fill_null(0.0),
             mean_abs_advantage=(pl.col("reward") - pl.col("reward").mean()).abs().mean())
        .select("round", "problem_id", "category", "n", "n_correct", "pass_rate", "reward_mean", "reward_std", "mean_abs_advantage")
        .sort("problem_id")
    )
    decisions = (
        graded.sort(KEYS)
        .with_columns(repeat=pl.int_range(pl.len()).over("problem_id", "completion", "correct") > 0)
        .sort(["problem_id", "reward", "sample_idx"], descending=[False, True, False])
        .with_columns(rank=(pl.col("correct") & ~pl.col("repeat")).cast(pl.Int64).cum_sum().over("problem_id"))
        .with_columns(reason=pl.when(~pl.col("correct")).then(pl.lit("incorrect")).when("repeat").then(pl.lit("duplicate"))
                      .when(pl.col("rank") > cap).then(pl.lit("over_cap")).otherwise(pl.lit("kept")))
        .sort(KEYS)
        .select("round", *KEYS, keep=pl.col("reason") == "kept", reason="reason")
        .collect()
    )
    kept = (
        samples.select("round", *KEYS, "prompt", "completion")
        .join(decisions.lazy().filter("keep").select(KEYS), on=KEYS)
        .join(verdicts.select(*KEYS, "reward"), on=KEYS)
        .with_columns(origin=pl.lit("sampled"))
        .sort(KEYS)
    )
    out.mkdir(parents=True, exist_ok=True)
    stats.collect().write_parquet(out / "stats.parquet")
    decisions.write_parquet(out / "decisions.parquet")
    kept.collect().write_parquet(out / "kept.parquet")
    (out / "metrics.json").write_text(json.dumps({"wall_s": round(time.perf_counter() - start, 2)}))


def workspace(root: Path, inputs: Path) -> Path:
    """A directory the stage runs in: the project's params.yaml, an empty state, no controller choice."""
    ws = root / "ws"
    if not ws.exists():
        (ws / "state").mkdir(parents=True)
        shutil.copy(PROJECT / "params.yaml", ws / "params.yaml")
        (ws / "controller.json").write_text("{}")
    return ws


def measure(command: list[str], cwd: Path, env: dict) -> dict:
    """Wall seconds, CPU seconds (user + system) and peak RSS (GB) of one process."""
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status):
            log.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed:\n{log.read().decode()[-3000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak": usage.ru_maxrss / 2**20}


def same_outputs(a: Path, b: Path) -> None:
    for name in ("decisions", "kept"):
        x, y = pl.read_parquet(a / f"{name}.parquet"), pl.read_parquet(b / f"{name}.parquet")
        assert x.schema == y.schema and x.equals(y), f"{a} and {b}: {name} differ"
    x, y = pl.read_parquet(a / "stats.parquet"), pl.read_parquet(b / "stats.parquet")
    floats = ["reward_mean", "reward_std", "mean_abs_advantage"]
    assert x.schema == y.schema and x.drop(floats).equals(y.drop(floats)), f"{a} and {b}: stats differ"
    assert all(float((x[c] - y[c]).abs().max() or 0.0) <= 1e-15 for c in floats), f"{a} and {b}: stats' floats differ"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000], help="samples (8 per problem)")
    parser.add_argument("--pairs", type=int, default=3, help="runs of each side per size, alternating")
    parser.add_argument("--rev", default=None, help="also run the stage as it was at this commit")
    parser.add_argument("--yardstick", nargs=3, metavar=("INPUTS", "OUT", "CAP"), help=argparse.SUPPRESS)  # a side's process
    parser.add_argument("--make", nargs=2, metavar=("OUT", "SAMPLES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.yardstick:
        return yardstick(Path(args.yardstick[0]), Path(args.yardstick[1]), int(args.yardstick[2]))
    if args.make:
        return make_inputs(Path(args.make[0]), int(args.make[1]))
    sys.path.insert(0, str(PROJECT))
    from sharpen.config import load_params

    f = load_params(PROJECT / "params.yaml").filter
    assert f.select == "correct" and f.dedup and not f.groups and f.pairs is None, f"the yardstick is rest-em's filter, not {f}"
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(PROJECT)}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sharpen-filter-bench-") as tmp:
        root = Path(tmp)
        sides = {"yardstick": None, "stage": str(PROJECT)}
        if args.rev:
            (root / "rev").mkdir()
            archive = subprocess.run(["git", "archive", args.rev, "sharpen", "stages"], cwd=PROJECT, check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(root / "rev")], input=archive.stdout, check=True)
            sides[f"stage at {args.rev}"] = str(root / "rev")
        results: dict[int, dict[str, list[dict]]] = {}
        floor = 0.0  # this process's RSS at a fork: a child's peak counts it (Linux keeps the high-water mark across exec)
        for size in args.sizes:
            inputs = root / f"in-{size}"
            start = time.perf_counter()
            # in a process of its own, so this one stays small: see `floor`
            subprocess.run([sys.executable, __file__, "--make", str(inputs), str(size)], check=True)
            print(f"{size:,} samples: inputs built in {time.perf_counter() - start:.0f} s", flush=True)
            ws = workspace(root, inputs)
            results[size] = {side: [] for side in sides}
            for pair in range(args.pairs):
                for side in (list(sides) if pair % 2 == 0 else list(sides)[::-1]):
                    out = root / f"out-{size}-{side.replace(' ', '-')}"
                    shutil.rmtree(out, ignore_errors=True)
                    if sides[side] is None:
                        command = [sys.executable, __file__, "--yardstick", str(inputs), str(out), str(f.cap)]
                    else:
                        command = [sys.executable, "-m", "stages.filter", "--samples", str(inputs / "samples.parquet"),
                                   "--verdicts", str(inputs / "verdicts.parquet"), "--problems", str(inputs / "problems.parquet"),
                                   "--state", "state", "--controller", "controller.json", "--out", str(out)]
                    floor = max(floor, int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30)
                    run = measure(command, ws, env | ({"PYTHONPATH": sides[side]} if sides[side] else {}))
                    run["work"] = json.loads((out / "metrics.json").read_text())["wall_s"]  # after the imports
                    results[size][side].append(run)
                    print(f"  pair {pair + 1} {side:22s} wall {run['wall']:6.1f} s (after imports {run['work']:6.1f} s)  "
                          f"cpu {run['cpu']:6.1f} s  peak {run['peak']:5.2f} GB", flush=True)
            outs = [root / f"out-{size}-{side.replace(' ', '-')}" for side in sides]
            for other in outs[1:]:
                same_outputs(outs[0], other)
            if args.rev:  # the two stages' metrics.json agree but for the wall time
                a, b = (json.loads((o / "metrics.json").read_text()) for o in outs[1:3])
                assert {**a, "wall_s": 0} == {**b, "wall_s": 0}, (a, b)
            shutil.rmtree(inputs)
    print(f"\n{args.pairs} pairs per size, sides alternating; {os.cpu_count()} CPU cores, load average {load:.1f} at the start;"
          f" every side wrote the same outputs; this process held at most {floor:.2f} GB when it started one (a floor under its peak)."
          " Ratios: median [min, max] over the pairs")
    for against in ["yardstick"] + ([f"stage at {args.rev}"] if args.rev else []):
        print(f"\n{'samples':>11s}  {'side':22s} {'wall s':>7s} {'work s':>7s} {'cpu s':>7s} {'peak GB':>7s}   "
              + " ".join(f"{m + ' / ' + against:>27s}" for m in ("wall", "cpu", "peak")))
        for size, by_side in results.items():
            for side, runs in by_side.items():
                ratios = [[r[m] / b[m] for r, b in zip(runs, by_side[against])] for m in ("wall", "cpu", "peak")]
                print(f"{size:>11,d}  {side:22s} " + " ".join(f"{statistics.median(r[m] for r in runs):7.2f}"
                                                           for m in ("wall", "work", "cpu", "peak"))
                      + "   " + " ".join(f"{statistics.median(v):11.3f} [{min(v):5.3f}, {max(v):5.3f}]" for v in ratios))
    print("wall: the process, imports included; work: the stage's own wall_s (metrics.json), after its imports")

if __name__ == "__main__":
    main()
